"""The wheel carries every package and the pretrained/ folder (as neuraudio/pretrained)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(proc.stderr[-2000:])
    return zipfile.ZipFile(next(out.glob("neuraudio-*.whl")))


def test_every_package_folder_is_in_the_wheel(wheel):
    names = set(wheel.namelist())
    for init in (ROOT / "neuraudio").rglob("__init__.py"):
        assert str(init.relative_to(ROOT)) in names, f"{init.parent} is missing from pyproject's packages"


def test_pretrained_folder_is_packaged(wheel):
    names = set(wheel.namelist())
    for path in (ROOT / "pretrained").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".safetensors", ".md"):
            assert "neuraudio/pretrained/" + str(path.relative_to(ROOT / "pretrained")) in names


def test_console_script_is_declared(wheel):
    entry = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert "neuraudio = neuraudio.cli:main" in wheel.read(entry).decode()
