"""Generated example signals to try the commands on (no bundled recordings needed)."""

from __future__ import annotations

import math

import torch


def noisy_melody(seconds: float = 6.0, sample_rate: int = 48000, noise_dbfs: float = -50.0, seed: int = 0) -> torch.Tensor:
    """A mono melody of decaying harmonic tones with rests, plus steady white noise at ``noise_dbfs`` RMS.

    Returns float32 ``(1, round(seconds * sample_rate))``; the same seed gives the same samples.
    """
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError("seconds and sample_rate must be positive.")
    gen = torch.Generator().manual_seed(seed)
    n = round(seconds * sample_rate)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    y = torch.zeros(n, dtype=torch.float64)
    note_s = 0.5
    for i in range(int(seconds / note_s)):
        if i % 4 == 3:  # a rest: only noise, for a gate to work on
            continue
        midi = 57 + int(torch.randint(0, 12, (1,), generator=gen))
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        start, stop = round(i * note_s * sample_rate), min(n, round((i + 0.8) * note_s * sample_rate))
        tt = t[: stop - start]
        env = torch.exp(-tt / 0.25) * (1 - torch.exp(-tt / 0.005))
        tone = sum(math.pow(0.5, h) * torch.sin(2 * math.pi * f0 * (h + 1) * tt) for h in range(4))
        y[start:stop] += 0.3 * env * tone
    noise = torch.randn(n, generator=gen, dtype=torch.float64) * 10 ** (noise_dbfs / 20)
    return (y + noise).to(torch.float32)[None]
