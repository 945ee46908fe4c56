"""Composite models: a chain of Processors that is itself a Processor, saved and loaded as one folder.

``Chain(parts=[{"class": "neuraudio.aec.linear:LinearAEC", "kwargs": {...}}, {"class": ..., "kwargs": ...}])`` runs
the parts one after the other: the first takes the chain's inputs (e.g. ``mic`` and ``ref``), each later part the
previous one's output as a live chain would (delayed by the earlier parts' latency); only the last may have stems. The parts are described by class and constructor kwargs (JSON),
so the chain's ``config.json`` rebuilds them and its ``model.safetensors`` holds every part's weights (as
``parts.0.*``, ``parts.1.*``, ...). The chain's hop is the least common multiple of the parts' hops, its latency the
sum of theirs, and its knobs the union of theirs (names must not collide).

Example:
    >>> chain = Chain([neuraudio.load("aec-linear").config, neuraudio.load("denoise-mmse").config])
    >>> out = chain.process(mic, ref)
    >>> neuraudio.hub.save_folder(chain, "models/aec-denoise", name="aec-denoise", task="echo")
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch

from neuraudio.stream.processor import Processor


class Chain(Processor):
    """Processors in series (see the module docstring).

    Args:
        parts: ``[{"class": "neuraudio.pkg.module:Class", "kwargs": {...}}, ...]``, in order.
    """

    def __init__(self, parts: Sequence[Mapping[str, Any]]):
        from neuraudio.hub import build  # the registry builds each part (classes inside neuraudio only)

        if not parts:
            raise ValueError("a chain needs at least one part.")
        models = [build(part["class"], dict(part["kwargs"]), f"chain part {i}") for i, part in enumerate(parts)]
        rates = {m.sample_rate for m in models}
        if len(rates) > 1:
            raise ValueError(f"the parts of a chain must share one sample rate, got {sorted(rates)} Hz.")
        for i, model in enumerate(models[1:], start=1):
            if len(model.input_channels()) != 1:
                raise ValueError(f"chain part {i} ({type(model).__name__}) takes several inputs; only the first may.")
        for model in models[:-1]:
            if model.stems:
                raise ValueError(f"{type(model).__name__} has stems; only the last part of a chain may.")
        hop = math.lcm(*(m.hop for m in models))
        super().__init__(rates.pop(), hop)
        self.parts = torch.nn.ModuleList(models)
        knobs: dict = {}
        for model in models:
            clash = set(knobs) & set(model.knobs)
            if clash:
                raise ValueError(f"chain parts share the knob name(s) {', '.join(sorted(clash))}.")
            knobs.update(model.knobs)
        self.knobs = knobs
        first, last = models[0], models[-1]
        self.inputs, self.in_channels = first.inputs, first.in_channels
        self.stems, self.out_channels = last.stems, last.out_channels
        self.task = last.task if len(first.input_channels()) == 1 else first.task

    @property
    def step_latency(self) -> int:
        return sum(part.step_latency for part in self.parts)

    def _own(self, part: Processor, knobs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: value for name, value in knobs.items() if name in part.knobs}

    def forward(self, x, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        for part in self.parts:
            x = part(x, self._own(part, knobs))
        return x

    def init_state(self, channels: int, max_samples: int, device) -> list:
        states, ch = [], channels
        for part in self.parts:
            states.append(part.init_state(ch, max_samples, device))
            ch = part.output_channels(ch)
        return states

    def step(self, x, state: list, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        for part, part_state in zip(self.parts, state):
            x = part.step(x, part_state, self._own(part, knobs))
        return x
