"""Time-stretching by phase vocoder with identity phase locking (Laroche & Dolson, 1999): the length changes, the
pitch does not. A plain function, not a Processor (the output is not aligned with the input).

Frames are read at fractional positions ``k * rate`` of the analysis STFT (magnitudes interpolated); each bin's phase
advances by its measured instantaneous frequency; bins around each spectral peak then take the peak's phase
rotation, which keeps the partials' phase relations (less "phasiness" than a free-running vocoder).

Example:
    >>> slower = time_stretch(x, 0.5)               # twice as long, same pitch
"""

from __future__ import annotations

import math

import torch

from neuraudio.stream.stft import STFT


def nearest_peaks(magnitude: torch.Tensor) -> torch.Tensor:
    """Index of the nearest local maximum (over +-2 bins) for every bin: ``(..., bins)``."""
    bins = magnitude.shape[-1]
    padded = torch.nn.functional.pad(magnitude, (2, 2))
    window = padded.unfold(-1, 5, 1)
    is_peak = magnitude >= window.max(dim=-1).values
    index = torch.arange(bins, device=magnitude.device).expand_as(magnitude)
    big = bins * 4
    left = torch.where(is_peak, index, torch.full_like(index, -big)).cummax(dim=-1).values
    right = torch.where(is_peak, index, torch.full_like(index, 2 * big)).flip(-1).cummin(dim=-1).values.flip(-1)
    return torch.where((index - left) <= (right - index), left, right).clamp(0, bins - 1)


def time_stretch(x: torch.Tensor, rate: float, n_fft: int = 2048, hop: int | None = None) -> torch.Tensor:
    """Play ``x`` (``(..., time)``) ``rate`` times as fast without changing its pitch.

    Returns ``(..., round(time / rate))``: exactly that length (``rate`` 2 halves it, 0.5 doubles it).
    """
    if not 0.05 <= rate <= 20:
        raise ValueError(f"rate must be in 0.05..20, got {rate}.")
    hop = hop or n_fft // 4
    length = x.shape[-1]
    out_length = round(length / rate)
    transform = STFT(n_fft, hop, center=True).to(x.device)
    spec = transform(x)  # (..., bins, frames)
    n_frames = spec.shape[-1]
    positions = torch.arange(0, n_frames - 1, rate, dtype=torch.float64, device=x.device)
    spec = torch.nn.functional.pad(spec, (0, 1))  # a silent frame past the end for the interpolation
    bins = spec.shape[-2]
    expected = (2 * math.pi * hop * torch.arange(bins, device=x.device) / n_fft).to(torch.float64)
    phase = spec[..., 0].angle().double()
    out = []
    for position in positions.tolist():
        k = int(position)
        frac = position - k
        a, b = spec[..., k], spec[..., k + 1]
        magnitude = (1 - frac) * a.abs() + frac * b.abs()
        out.append(torch.polar(magnitude.float(), phase.float()))
        # advance by each bin's instantaneous frequency between the two frames
        delta = (b.angle() - a.angle()).double() - expected
        delta = delta - 2 * math.pi * torch.round(delta / (2 * math.pi))
        advanced = phase + expected + delta
        # identity phase locking: bins follow their peak's rotation
        peaks = nearest_peaks(magnitude)
        rotation = advanced - b.angle().double()
        phase = b.angle().double() + torch.gather(rotation, -1, peaks)
    stretched = torch.stack(out, dim=-1) if out else spec[..., :0]
    y = transform.inverse(stretched, length=out_length)
    return y
