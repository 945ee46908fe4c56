"""The offline tools the data builders call (Debian packages), found on PATH or refused with a sentence.

    >>> require("espeak-ng")        # the path, or ToolError naming the Debian package to install
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PACKAGES = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "festival": "festival",
    "text2wave": "festival",
    "fluidsynth": "fluidsynth",
}
SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))
# General MIDI soundfonts by their Debian package; the files each installs.
SOUNDFONTS = {
    "fluid-soundfont-gm": ("FluidR3_GM.sf2",),
    "timgm6mb-soundfont": ("TimGM6mb.sf2",),
    "musescore-general-soundfont-small": ("MuseScore_General_Lite.sf3", "MuseScore_General.sf3"),
}


class ToolError(RuntimeError):
    """A tool a builder needs is missing or failed (one sentence naming it)."""


def require(tool: str) -> str:
    """Absolute path of ``tool``; ``ToolError`` naming its Debian package when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        package = PACKAGES.get(tool, tool)
        raise ToolError(f"{tool} is not installed; install the Debian package {package} "
                        f"(apt-get install {package}).")
    return path


def available(tool: str) -> bool:
    return shutil.which(tool) is not None


def run(args: list[str], *, input: str | None = None, timeout: float = 120.0) -> None:
    """Run a tool; a non-zero exit becomes ``ToolError`` with the tool's first line of stderr."""
    try:
        proc = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{Path(args[0]).name} did not finish within {timeout:g} s.") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise ToolError(f"{Path(args[0]).name} failed (exit {proc.returncode}): {message[0] if message else 'no message'}.")


def soundfonts() -> dict[str, Path]:
    """Installed General MIDI soundfonts: ``{debian_package: path}`` (one file per package)."""
    found = {}
    for package, names in SOUNDFONTS.items():
        for name in names:
            for folder in SOUNDFONT_DIRS:
                if (folder / name).is_file():
                    found.setdefault(package, (folder / name).resolve())
    return found


def require_soundfonts(minimum: int = 1) -> dict[str, Path]:
    fonts = soundfonts()
    if len(fonts) < minimum:
        raise ToolError(f"{len(fonts)} General MIDI soundfont(s) found, {minimum} needed; install the Debian packages "
                        f"{', '.join(SOUNDFONTS)}.")
    return fonts
