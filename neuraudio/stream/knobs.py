"""Knobs: their specification (range, default, unit) and the one glide that ``Stream`` and ``Engine`` both apply.

After the first value, a new value set on a stream is approached per sample by a one-pole smoother with time
constant ``Processor.knob_time_constant_ms``; the trajectory depends only on the sample index at which the value
was set, never on block sizes, so :func:`knob_trajectory` rebuilds it for offline processing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import torch

KnobValue = Union[float, int, torch.Tensor]


@dataclass(frozen=True)
class Knob:
    """A control of a model: its range, default and unit (``"dB"``, ``"ms"``, ``"Hz"``, ``"0..1"``...)."""

    default: float
    minimum: float
    maximum: float
    unit: str
    doc: str = ""

    def __post_init__(self):
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"knob default {self.default} lies outside {self.minimum}..{self.maximum}.")

    @property
    def range_text(self) -> str:
        """``"-60..0 dBFS"``; a normalised knob reads ``"0..1"`` (its unit is the range itself)."""
        span = f"{self.minimum:g}..{self.maximum:g}"
        return span if not self.unit or self.unit == span else f"{span} {self.unit}"

    def check(self, name: str, value: float) -> float:
        value = float(value)
        if not (self.minimum <= value <= self.maximum):  # also rejects NaN
            raise ValueError(f"knob {name}={value:g} is outside its range {self.range_text}.")
        return value


def glide_coefficient(time_constant_ms: float, sample_rate: int) -> float:
    """Per-sample pole of a one-pole smoother with the given time constant (0 ms: no smoothing)."""
    if time_constant_ms <= 0:
        return 0.0
    return math.exp(-1000.0 / (time_constant_ms * sample_rate))


def glide(current: float, target: float, n: int, coefficient: float) -> tuple[torch.Tensor, float]:
    """``n`` per-sample values gliding from ``current`` towards ``target``; returns them (float64) and the last.

    ``v[k] = target + (current - target) * coefficient ** (k + 1)``: the closed form of the one-pole recursion, so
    splitting ``n`` into any blocks gives the same values (to float64 rounding).
    """
    if current == target or n == 0:
        return torch.full((n,), target, dtype=torch.float64), current if n == 0 else target
    powers = coefficient ** torch.arange(1, n + 1, dtype=torch.float64)
    values = target + (current - target) * powers
    last = float(values[-1])
    if abs(last - target) <= 1e-12 * max(1.0, abs(target)):
        last = target
    return values, last


def knob_trajectory(initial: float, changes: Sequence[tuple[int, float]], length: int,
                    time_constant_ms: float, sample_rate: int) -> torch.Tensor:
    """The per-sample knob values a :class:`Stream` applies, for offline processing.

    Args:
        initial: value before any change (applied at once).
        changes: ``(sample_index, new_value)`` pairs, in order: each value was set before the sample at that index.
        length: number of samples.

    Returns:
        float32 tensor ``(length,)``.
    """
    coefficient = glide_coefficient(time_constant_ms, sample_rate)
    out = torch.empty(length, dtype=torch.float64)
    current, target, start = initial, initial, 0
    for index, value in list(changes) + [(length, None)]:
        index = min(max(index, start), length)
        out[start:index], current = glide(current, target, index - start, coefficient)
        start = index
        if value is not None:
            target = float(value)
    return out.to(torch.float32)


def glide_into(out: torch.Tensor, current: float, target: float, powers: torch.Tensor) -> float:
    """:func:`glide` into a preallocated float64 row ``out`` (``(n,)``) with ``powers = coefficient ** (1..n)``
    precomputed: no allocation, for an audio thread. Returns the value reached."""
    if current == target:
        out.fill_(target)
        return target
    torch.mul(powers[: out.numel()], current - target, out=out)
    out.add_(target)
    last = float(out[-1])
    return target if abs(last - target) <= 1e-12 * max(1.0, abs(target)) else last
