"""On-the-fly mixing hooks: random gain, mixing at a signal-to-noise ratio, random first-order tilt filtering.

All take and return ``(..., time)`` tensors and draw from torch's global generator (seeded per worker by
Lightning), so a seeded run is reproducible.
"""

from __future__ import annotations

import math

import torch


def uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def random_gain(x: torch.Tensor, low_db: float = -6.0, high_db: float = 6.0) -> torch.Tensor:
    return x * 10 ** (uniform(low_db, high_db) / 20)


def mix_at_snr(signal: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``signal + g * noise`` with ``g`` chosen so that the power ratio is ``snr_db``; returns the scaled noise."""
    p_signal = signal.pow(2).mean()
    p_noise = noise.pow(2).mean().clamp_min(1e-12)
    return noise * torch.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))


def random_tilt(x: torch.Tensor, max_db: float = 6.0) -> torch.Tensor:
    """A gentle random spectral tilt: a one-pole low- or high-pass blended with the dry signal."""
    amount = uniform(0.0, 1.0 - 10 ** (-max_db / 20))
    pole = math.exp(-2 * math.pi * uniform(500.0, 4000.0) / 16000)
    # A one-pole filter as a short IIR approximated by its first 64 taps (enough at these poles).
    taps = (1 - pole) * pole ** torch.arange(64, dtype=x.dtype)
    flat = x.reshape(-1, 1, x.shape[-1])
    low = torch.nn.functional.conv1d(torch.nn.functional.pad(flat, (63, 0)), taps.flip(0).view(1, 1, -1)).reshape(x.shape)
    filtered = low if torch.rand(()) < 0.5 else x - low
    return (1 - amount) * x + amount * filtered


def reverberate(x: torch.Tensor, rir: torch.Tensor, sample_rate: int, early_ms: float = 50.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (``(..., time)``) through a room impulse response (``(rir_length,)``): ``(wet, early)``, both as long
    as ``x`` and aligned with it (the response's direct-path peak moved to lag 0). ``early`` keeps the response up to
    ``early_ms`` after the peak: the target of a denoiser that should not also have to remove the room's early
    reflections. Scaled so that ``early`` has the level of ``x``."""
    peak = int(rir.abs().argmax())
    rir = rir[peak:]
    early = rir[: max(1, round(early_ms * sample_rate / 1000))]
    length = x.shape[-1]
    size = 1 << (length + rir.shape[-1] - 1).bit_length()
    spectrum = torch.fft.rfft(x, n=size)
    wet = torch.fft.irfft(spectrum * torch.fft.rfft(rir, n=size), n=size)[..., :length]
    dry = torch.fft.irfft(spectrum * torch.fft.rfft(early, n=size), n=size)[..., :length]
    scale = torch.sqrt(x.pow(2).mean() / dry.pow(2).mean().clamp_min(1e-12))
    return wet * scale, dry * scale
