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


def exercise_signal(seconds: float = 3.0, sample_rate: int = 48000, seed: int = 0) -> torch.Tensor:
    """A signal that exercises a model across its operating range, for checks such as the engine's precision test.

    In order: plucked harmonic notes (sharp attacks, long decays, 82-660 Hz) at peaks from -45 to 0 dBFS, with
    stretches of exact digital silence between groups; a 10-ms click train; a white-noise burst at -12 dBFS RMS; a
    logarithmic sine sweep 40 Hz - 0.45 * rate at -6 dBFS. Guitar DI and speech reach levels and transients that a
    sine with light noise does not (the field report, issue [1/6]: klon-centaur in bfloat16 passed a sine at ESR 5.7e-5
    and reached 2.2e-3 on real guitar DI).

    Returns float32 ``(1, round(seconds * sample_rate))``; the same seed gives the same samples.
    """
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError("seconds and sample_rate must be positive.")
    gen = torch.Generator().manual_seed(seed)
    n = round(seconds * sample_rate)
    y = torch.zeros(n, dtype=torch.float64)
    notes_end, clicks_end, noise_end = round(0.55 * n), round(0.65 * n), round(0.8 * n)
    note = max(1, round(0.12 * sample_rate))
    peaks_db = torch.linspace(-45.0, 0.0, max(1, notes_end // note), dtype=torch.float64)
    for i, peak_db in enumerate(peaks_db):
        start = i * note
        if i % 6 == 5:  # a gap of exact zeros
            continue
        f0 = 82.4 * 2 ** (float(torch.rand((), generator=gen, dtype=torch.float64)) * 3)
        tt = torch.arange(min(note, notes_end - start), dtype=torch.float64) / sample_rate
        env = torch.exp(-tt / 0.08)
        tone = sum((0.7 ** h) * torch.sin(2 * math.pi * f0 * (h + 1) * tt) for h in range(8))
        tone = env * tone / tone.abs().max().clamp_min(1e-9)
        y[start : start + tt.numel()] = 10 ** (float(peak_db) / 20) * tone
    period = max(2, round(0.01 * sample_rate))
    y[notes_end:clicks_end:period] = 0.9
    y[clicks_end:noise_end] = 10 ** (-12 / 20) * torch.randn(noise_end - clicks_end, generator=gen, dtype=torch.float64)
    tt = torch.arange(n - noise_end, dtype=torch.float64) / sample_rate
    span = max(tt[-1].item(), 1e-9) if tt.numel() else 1.0
    f1, f2 = 40.0, 0.45 * sample_rate
    phase = 2 * math.pi * f1 * span / math.log(f2 / f1) * (torch.exp(tt / span * math.log(f2 / f1)) - 1)
    y[noise_end:] = 0.5 * torch.sin(phase)
    return y.to(torch.float32)[None]
