"""Source material for the builders: a folder of audio files as one pool of random excerpts, and noise generators.

    >>> pool = AudioPool("speech_dir", 16000)
    >>> x, where = pool.excerpt(np.random.default_rng(0), 16000 * 4)      # 4 s, float64, and where it came from
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuraudio.audio import audio_files_under, read_audio


def require_audio(root: str | Path, what: str) -> list[Path]:
    """The audio files under ``root``, or a ``ValueError`` sentence when there are none (cheap: reads no audio)."""
    files = audio_files_under(Path(root))
    if not files:
        raise ValueError(f"{root}: no audio files found for the {what} pool.")
    return files


class AudioPool:
    """Every audio file under ``root`` (recursively), mono, at ``sample_rate``, held in memory.

    Files shorter than the excerpt asked for are joined with the next ones (in sorted order) into one excerpt.
    """

    def __init__(self, root: str | Path, sample_rate: int, what: str = "audio"):
        files = require_audio(root, what)
        self.sample_rate = sample_rate
        self.names = [str(Path(f).relative_to(root)) if Path(root).is_dir() else Path(f).name for f in files]
        self.signals = [read_audio(f, sample_rate=sample_rate, channels=1)[0][0].double().numpy() for f in files]

    @property
    def seconds(self) -> float:
        return sum(len(s) for s in self.signals) / self.sample_rate

    def excerpt(self, rng: np.random.Generator, length: int) -> tuple[np.ndarray, str]:
        """``length`` samples starting at a random file and offset; returns them and ``"file@start_sample"``."""
        i = int(rng.integers(len(self.signals)))
        start = int(rng.integers(max(1, len(self.signals[i]) - length + 1)))
        pieces, need, j, offset = [], length, i, start
        while need > 0:
            piece = self.signals[j][offset : offset + need]
            pieces.append(piece)
            need -= len(piece)
            j, offset = (j + 1) % len(self.signals), 0
        return np.concatenate(pieces), f"{self.names[i]}@{start}"


def colored_noise(rng: np.random.Generator, length: int, exponent: float) -> np.ndarray:
    """Noise with power spectral density ``1 / f**exponent`` (0 white, 1 pink, 2 brown, -1 blue, -2 violet),
    unit RMS."""
    spectrum = rng.standard_normal(length // 2 + 1) + 1j * rng.standard_normal(length // 2 + 1)
    f = np.fft.rfftfreq(length)
    f[0] = f[1] if length > 1 else 1.0
    x = np.fft.irfft(spectrum * f ** (-exponent / 2), length)
    return x / max(np.sqrt(np.mean(x**2)), 1e-12)


class ColoredNoisePool:
    """Stands in for an :class:`AudioPool` of noise: each excerpt is new colored noise (exponent -2..2)."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate

    def excerpt(self, rng: np.random.Generator, length: int) -> tuple[np.ndarray, str]:
        exponent = float(rng.uniform(-2, 2))
        return 0.1 * colored_noise(rng, length, exponent), f"colored:{exponent:.2f}"
