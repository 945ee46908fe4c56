"""Capturing a piece of gear: the test signal to play through it, and alignment of what comes back.

:func:`capture_signal` lays out, at ``sample_rate``: calibration blips (three single-sample clicks 0.5 s apart,
found again in the recording to measure the round-trip delay), log sine sweeps at -18 and -6 dBFS, white and pink
noise at -40, -24, -12 and -6 dBFS, generated musical material (plucked strings, chords, bass, percussive hits at
varied dynamics), and a validation segment played twice at the end. Playing the same samples twice lets
:func:`align` measure how repeatable the capture is: the two replicates of a deterministic, time-invariant effect
agree to ESR ~ 0; noise, a time-based effect (delay, modulation) or a moved knob shows up there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from neuraudio.metrics import esr as esr_loss
from neuraudio.stream.delay import estimate_delay


def _sweep(seconds: float, sr: int, level_db: float) -> torch.Tensor:
    t = torch.arange(round(seconds * sr), dtype=torch.float64) / sr
    f0, f1 = 20.0, min(20000.0, 0.45 * sr)
    k = math.log(f1 / f0)
    return 10 ** (level_db / 20) * torch.sin(2 * math.pi * f0 * seconds / k * (torch.exp(t * k / seconds) - 1))


def _pink(n: int, gen: torch.Generator) -> torch.Tensor:
    spec = torch.fft.rfft(torch.randn(n, generator=gen, dtype=torch.float64))
    spec = spec / torch.sqrt(torch.arange(spec.numel(), dtype=torch.float64).clamp_min(1.0))
    x = torch.fft.irfft(spec, n=n)
    return x / x.pow(2).mean().sqrt()


def _pluck(f0: float, seconds: float, sr: int, gen: torch.Generator) -> torch.Tensor:
    """Karplus-Strong string: a noise burst in a delay line with an averaging filter."""
    period = max(2, round(sr / f0))
    n = round(seconds * sr)
    out = torch.zeros(n, dtype=torch.float64)
    line = torch.rand(period, generator=gen, dtype=torch.float64) * 2 - 1
    for start in range(0, n, period):
        chunk = line[: min(period, n - start)]
        out[start : start + chunk.numel()] = chunk
        line = 0.996 * 0.5 * (line + torch.roll(line, -1))
    return out


def _music(seconds: float, sr: int, gen: torch.Generator) -> torch.Tensor:
    n = round(seconds * sr)
    out = torch.zeros(n, dtype=torch.float64)
    t = 0.0
    while t < seconds - 0.3:
        length = float(torch.empty(()).uniform_(0.25, 1.2, generator=gen))
        level = 10 ** (float(torch.empty(()).uniform_(-30, -3, generator=gen)) / 20)
        root = 82.41 * 2 ** (int(torch.randint(0, 24, (1,), generator=gen)) / 12)
        kind = int(torch.randint(0, 4, (1,), generator=gen))
        notes = [root] if kind == 0 else [root, root * 2 ** (4 / 12), root * 2 ** (7 / 12)] if kind == 1 else \
            [root / 2] if kind == 2 else []
        start = round(t * sr)
        seg = min(round(length * sr), n - start)
        for f in notes:
            out[start : start + seg] += level * _pluck(f, seg / sr, sr, gen)[:seg] / len(notes) ** 0.5
        if kind == 3:  # a percussive noise hit
            env = torch.exp(-torch.arange(seg, dtype=torch.float64) / (0.03 * sr))
            out[start : start + seg] += level * env * torch.randn(seg, generator=gen, dtype=torch.float64)
        t += length * float(torch.empty(()).uniform_(0.6, 1.0, generator=gen))
    return out.clamp(-1, 1)


@dataclass
class CaptureLayout:
    """Sample positions in a capture signal (saved beside it as JSON)."""

    sample_rate: int
    blips: list[int]
    validation: list[list[int]]  # two [start, end) replicates of the same samples


def capture_signal(sample_rate: int = 48000, minutes: float = 3.0, seed: int = 0) -> tuple[torch.Tensor, CaptureLayout]:
    """The capture test signal ``(1, time)`` float32 and its layout. Same arguments, same samples."""
    if minutes < 1.0:
        raise ValueError(f"a capture signal needs at least 1 minute (calibration, sweeps, noise and validation "
                         f"take 40 s), got {minutes:g}.")
    gen = torch.Generator().manual_seed(seed)
    sr = sample_rate
    parts, blips, pos = [], [], 0

    def add(x: torch.Tensor) -> None:
        nonlocal pos
        parts.append(x)
        pos += x.numel()

    add(torch.zeros(sr // 2, dtype=torch.float64))
    for _ in range(3):
        click = torch.zeros(sr // 2, dtype=torch.float64)
        click[0] = 0.5
        blips.append(pos)
        add(click)
    for level in (-18.0, -6.0):
        add(_sweep(5.0, sr, level))
        add(torch.zeros(sr // 4, dtype=torch.float64))
    for level in (-40.0, -24.0, -12.0, -6.0):
        for noise in (torch.randn(sr, generator=gen, dtype=torch.float64), _pink(sr, gen)):
            noise = 10 ** (level / 20) * noise  # RMS at the level, peaks kept below full scale
            add(noise * min(1.0, 0.99 / float(noise.abs().max())))
    validation_seconds = 10.0
    fixed = pos / sr + 2 * validation_seconds + 1.0
    add(_music(max(5.0, minutes * 60 - fixed), sr, gen))
    add(torch.zeros(sr // 2, dtype=torch.float64))
    val = _music(validation_seconds, sr, torch.Generator().manual_seed(seed + 1))
    reps = []
    for _ in range(2):
        reps.append([pos, pos + val.numel()])
        add(val)
    add(torch.zeros(sr // 2, dtype=torch.float64))
    return torch.cat(parts).to(torch.float32)[None], CaptureLayout(sr, blips, reps)


@dataclass
class AlignmentReport:
    delay: int                  # samples the recording lags the input
    delay_ms: float
    inverted: bool              # polarity flipped
    replicate_esr: float | None  # ESR between the two validation replicates of the aligned recording
    method: str

    def lines(self) -> list[str]:
        out = [f"delay: {self.delay} samples ({self.delay_ms:.2f} ms) found by {self.method}",
               f"polarity: {'inverted (flipped back)' if self.inverted else 'normal'}"]
        if self.replicate_esr is not None:
            verdict = "ok" if self.replicate_esr <= 0.01 else \
                "WARNING: above 0.01 - noise, a time-based effect or a moved knob during the capture"
            out.append(f"replicate validation ESR: {self.replicate_esr:.5f} ({verdict})")
        return out

    def as_dict(self) -> dict:
        return asdict(self)


def find_delay(reference: torch.Tensor, recording: torch.Tensor, max_delay: int) -> tuple[int, bool]:
    """Lag (``0..max_delay``) and polarity maximising the plain cross-correlation of two mono signals ``(time,)``
    (:func:`neuraudio.stream.delay.estimate_delay` without PHAT: clicks and sweeps to the sample)."""
    lag, inverted, _ = estimate_delay(reference, recording, max_delay, phat=False)
    return lag, inverted


def align(input_signal: torch.Tensor, recording: torch.Tensor, sample_rate: int, layout: CaptureLayout | None = None,
          max_delay_seconds: float = 0.5) -> tuple[torch.Tensor, AlignmentReport]:
    """Shift and (if needed) flip ``recording`` (``(1, time)``) onto ``input_signal``; returns it and a report.

    With a layout the delay comes from the calibration blips; without, from cross-correlating the first 30 s.
    """
    max_delay = round(max_delay_seconds * sample_rate)
    x, r = input_signal[0], recording[0]
    if layout is not None:
        start, stop = layout.blips[0], layout.blips[-1] + sample_rate // 2
        method = "the calibration blips"
    else:
        start, stop = 0, min(x.numel(), 30 * sample_rate)
        method = "cross-correlation"
    delay, inverted = find_delay(x[start:stop], r[start : stop + max_delay], max_delay)
    aligned = r[delay:]
    aligned = torch.nn.functional.pad(aligned, (0, x.numel() - aligned.numel()))[: x.numel()]
    if inverted:
        aligned = -aligned
    replicate = None
    if layout is not None:
        (a0, a1), (b0, b1) = layout.validation
        replicate = float(esr_loss(aligned[b0:b1][None], aligned[a0:a1][None]))
    report = AlignmentReport(delay, 1000 * delay / sample_rate, inverted, replicate, method)
    return aligned[None], report
