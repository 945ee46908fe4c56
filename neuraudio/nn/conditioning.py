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


def knob_specs(knobs: Mapping[str, Mapping]) -> dict[str, Knob]:
    """``{"gain": {"default": 0.5, "minimum": 0, "maximum": 1, "unit": "0..1"}}`` -> ``{"gain": Knob(...)}``.

    An optional ``"scale": "log"`` in a spec (for times and ratios) normalises on a log axis.
    """
    specs = {}
    for name, spec in knobs.items():
        fields = {k: v for k, v in spec.items() if k in ("default", "minimum", "maximum", "unit", "doc")}
        try:
            specs[name] = Knob(**fields)
        except TypeError as err:
            raise ValueError(f"knob {name!r}: {err}; give default, minimum, maximum and unit.") from None
        if spec.get("scale", "linear") == "log" and specs[name].minimum <= 0:
            raise ValueError(f"knob {name!r}: a log-scaled knob needs a positive minimum.")
    return specs


class KnobNormalizer(nn.Module):
    """Per-sample knob tensors ``{name: (..., T)}`` -> normalised features ``(..., T, K)`` in 0..1."""

    def __init__(self, knobs: Mapping[str, Mapping]):
        super().__init__()
        self.names = list(knobs)
        lo, hi, log = [], [], []
        for name in self.names:
            spec = knobs[name]
            is_log = spec.get("scale", "linear") == "log"
            lo.append(math.log(spec["minimum"]) if is_log else spec["minimum"])
            hi.append(math.log(spec["maximum"]) if is_log else spec["maximum"])
            log.append(is_log)
        self.register_buffer("lo", torch.tensor(lo, dtype=torch.float32), persistent=False)
        self.register_buffer("span", (torch.tensor(hi) - torch.tensor(lo)).clamp_min(1e-9).float(), persistent=False)
        self.log = log

    def forward(self, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        columns = [torch.log(knobs[n].clamp_min(1e-12)) if is_log else knobs[n] for n, is_log in zip(self.names, self.log)]
        return (torch.stack(columns, dim=-1) - self.lo) / self.span

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
        if condition.shape[-2] > 1 and bool((condition == condition[..., :1, :]).all()):
            # Knobs held still over the block (the usual case): one MLP evaluation, broadcast over time.
            condition = condition[..., :1, :]
        gamma, beta = self.net(condition).chunk(2, dim=-1)
        return features * (1 + gamma) + beta
