"""Harmonic/percussive source separation by median filtering (Fitzgerald, 2010), with soft masks.

Harmonic sounds are smooth along time in a magnitude spectrogram, percussive ones along frequency: a median filter
across ``harmonic_frames`` frames estimates the harmonic part ``H``, one across ``percussive_bins`` bins the
percussive part ``P``, and the soft masks ``H^p / (H^p + P^p)`` and ``P^p / (H^p + P^p)`` (``p = power``) split the
complex spectrogram, which the ISTFT turns back into two signals that sum to the input.

Non-causal: it runs through :class:`neuraudio.stream.chunked.ChunkedProcessor`, windows of ``chunk_seconds`` with
the model's whole reach (one STFT frame either side of the median filter's half-length) as context on each side, so
the chunked output equals one pass over the whole signal and memory stays bounded on any length. Any sample rate and
channel count (each channel on its own).

Shape:
    ``process(x)``: ``(..., channels, time)`` -> ``(..., 2, channels, time)``, stems ``("harmonic", "percussive")``.

Example:
    >>> model = neuraudio.load("hpss")
    >>> harmonic, percussive = model.process(song)          # song: (2, time) at 44.1 kHz
"""

from __future__ import annotations

from typing import Mapping

import torch

from neuraudio.stream.chunked import ChunkedProcessor
from neuraudio.stream.stft import istft, make_window, stft


def median_filter(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Median over ``size`` (odd) neighbours along ``dim``, zeros beyond the edges; same shape as ``x``."""
    half = size // 2
    moved = x.movedim(dim, -1)
    padded = torch.nn.functional.pad(moved, (half, half))
    return padded.unfold(-1, size, 1).median(dim=-1).values.movedim(-1, dim)


class HPSS(ChunkedProcessor):
    """Harmonic/percussive separation (classical DSP, no weights).

    Args:
        sample_rate: Hz (any).
        n_fft, hop: STFT frame and hop in samples (hann window).
        harmonic_frames: median length across time, in frames (odd).
        percussive_bins: median length across frequency, in bins (odd).
        power: mask exponent (2: Wiener-like soft masks; larger: harder).
        chunk_seconds: audio per window (rounded to whole hops).
    """

    task = "separation"
    stems = ("harmonic", "percussive")

    def __init__(self, sample_rate: int = 44100, n_fft: int = 2048, hop: int = 512, harmonic_frames: int = 17,
                 percussive_bins: int = 17, power: float = 2.0, chunk_seconds: float = 10.0):
        for name, size in (("harmonic_frames", harmonic_frames), ("percussive_bins", percussive_bins)):
            if size < 1 or size % 2 == 0:
                raise ValueError(f"{name} must be an odd number >= 1, got {size}.")
        if n_fft < 2 or not 1 <= hop <= n_fft:
            raise ValueError(f"need n_fft >= 2 and 1 <= hop <= n_fft, got {n_fft} and {hop}.")
        if power <= 0:
            raise ValueError(f"power must be positive, got {power}.")
        # Reach of one output sample: the frames that cover it (n_fft), each frame's median over
        # harmonic_frames // 2 frames either way, in whole hops so that every window frames on the global grid.
        reach = -(-(n_fft + (harmonic_frames // 2) * hop) // hop) * hop
        chunk = max(hop, round(chunk_seconds * sample_rate / hop) * hop)
        super().__init__(sample_rate, chunk, reach)
        self.n_fft, self.stft_hop = int(n_fft), int(hop)
        self.harmonic_frames, self.percussive_bins, self.power = harmonic_frames, percussive_bins, float(power)
        self.register_buffer("window", make_window("hann", n_fft), persistent=False)

    def masks(self, magnitude: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft harmonic and percussive masks of a magnitude spectrogram ``(..., bins, frames)``."""
        harmonic = median_filter(magnitude, self.harmonic_frames, dim=-1) ** self.power
        percussive = median_filter(magnitude, self.percussive_bins, dim=-2) ** self.power
        total = (harmonic + percussive).clamp_min(1e-20)
        return harmonic / total, percussive / total

    def process_window(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        n_fft, hop, length = self.n_fft, self.stft_hop, x.shape[-1]
        # Causal frames over the window followed by n_fft - hop zeros, so that the ISTFT (which delays by
        # n_fft - hop) returns every sample of the window.
        tail = n_fft - hop
        padded = torch.nn.functional.pad(x, (0, tail + (-(length + tail)) % hop))
        spec = stft(padded, n_fft, hop, self.window)
        mask_h, mask_p = self.masks(spec.abs())
        stems = torch.stack([spec * mask_h, spec * mask_p], dim=-4)  # (..., 2, channels, bins, frames)
        y = istft(stems, n_fft, hop, self.window)
        return y[..., tail : tail + length]
