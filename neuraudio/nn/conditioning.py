"""Knob conditioning: knob specs from JSON-able kwargs, normalisation to 0..1, and FiLM.

FiLM (feature-wise linear modulation): ``h * (1 + gamma(c)) + beta(c)`` with ``gamma, beta`` a small MLP of the
normalised knobs ``c``; initialised to the identity (gamma = beta = 0) so an untrained model ignores its knobs.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from neuraudio.stream.processor import Knob


SCALES = ("linear", "log", "audio")
AUDIO_TAPER_BASE = 81.0  # (81**0.5 - 1) / 80 = 0.1: an A-taper pot has 10% of its resistance at mid-travel


def knob_specs(knobs: Mapping[str, Mapping]) -> dict[str, Knob]:
    """``{"gain": {"default": 0.5, "minimum": 0, "maximum": 1, "unit": "0..1"}}`` -> ``{"gain": Knob(...)}``.

    An optional ``"scale"`` says how the knob's travel maps to the model's 0..1 feature:

    * ``"linear"`` (default): ``(v - minimum) / (maximum - minimum)``;
    * ``"log"`` (times, ratios, frequencies): the same on ``log(v)``; needs a positive minimum;
    * ``"audio"``: the law of an audio-taper (A, logarithmic) potentiometer, the usual gain or volume pot of a pedal:
      with ``p`` the linear position, the feature is ``(81**p - 1) / 80`` (10% of the resistance at mid-travel).
      Declaring the pot's law puts settings that sound alike close together, which is what lets a model trained at a
      few settings interpolate between them.
    """
    specs = {}
    for name, spec in knobs.items():
        fields = {k: v for k, v in spec.items() if k in ("default", "minimum", "maximum", "unit", "doc")}
        try:
            specs[name] = Knob(**fields)
        except TypeError as err:
            raise ValueError(f"knob {name!r}: {err}; give default, minimum, maximum and unit.") from None
        scale = spec.get("scale", "linear")
        if scale not in SCALES:
            raise ValueError(f"knob {name!r}: scale must be one of {', '.join(SCALES)}, got {scale!r}.")
        if scale == "log" and specs[name].minimum <= 0:
            raise ValueError(f"knob {name!r}: a log-scaled knob needs a positive minimum.")
    return specs


class KnobNormalizer(nn.Module):
    """Per-sample knob tensors ``{name: (..., T)}`` -> normalised features ``(..., T, K)`` in 0..1."""

    def __init__(self, knobs: Mapping[str, Mapping]):
        super().__init__()
        self.names = list(knobs)
        lo, hi, self.scales = [], [], []
        for name in self.names:
            spec = knobs[name]
            scale = spec.get("scale", "linear")
            lo.append(math.log(spec["minimum"]) if scale == "log" else spec["minimum"])
            hi.append(math.log(spec["maximum"]) if scale == "log" else spec["maximum"])
            self.scales.append(scale)
        self.register_buffer("lo", torch.tensor(lo, dtype=torch.float32), persistent=False)
        self.register_buffer("span", (torch.tensor(hi) - torch.tensor(lo)).clamp_min(1e-9).float(), persistent=False)
        self.register_buffer("audio", torch.tensor([s == "audio" for s in self.scales]), persistent=False)

    def forward(self, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        columns = [torch.log(knobs[n].clamp_min(1e-12)) if s == "log" else knobs[n] for n, s in zip(self.names, self.scales)]
        position = (torch.stack(columns, dim=-1) - self.lo) / self.span
        if "audio" in self.scales:
            tapered = (torch.pow(AUDIO_TAPER_BASE, position) - 1) / (AUDIO_TAPER_BASE - 1)
            position = torch.where(self.audio, tapered, position)
        return position

    def rows(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Features for every row of ``x`` (``(..., channels, T)``): ``(rows, T, K)``, knobs given per batch item
        (``(..., T)``, broadcast over channels) or per row (``(..., channels, T)``)."""
        lead, length = x.shape[:-1], x.shape[-1]
        per_row = {n: v.unsqueeze(-2).expand(*lead, length) if v.ndim < x.ndim else v for n, v in knobs.items()}
        return self(per_row).reshape(-1, length, len(self.names))


class FiLM(nn.Module):
    """Scale and shift ``features`` (``(..., T, C)``) by an MLP of ``condition`` (``(..., T, K)``)."""

    def __init__(self, condition_size: int, features: int, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(condition_size, hidden), nn.Tanh(), nn.Linear(hidden, 2 * features))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if condition.shape[-2] > 1 and not condition.is_cuda and bool((condition == condition[..., :1, :]).all()):
            # Knobs held still over the block (the usual case): one MLP evaluation, broadcast over time. Not on
            # CUDA, where the check would synchronise (and break CUDA-graph capture) and the MLP is cheap anyway.
            condition = condition[..., :1, :]
        gamma, beta = self.net(condition).chunk(2, dim=-1)
        return features * (1 + gamma) + beta
