"""Causal dilated-convolution effect model (TCN / WaveNet class) with FiLM knob conditioning.

Each layer: ``h = h + W_out * tanh(FiLM(conv_dilated(h), c)) * sigmoid(...)`` (a gated residual block), with
dilations ``1, 2, 4, ... 2**(layers_per_stack - 1)`` repeated ``stacks`` times; the output is a linear mix of every
layer's output plus the dry input. The receptive field is ``1 + (kernel_size - 1) * sum(dilations)`` samples;
latency is 0 (causal). Streaming keeps, per layer, the last ``(kernel_size - 1) * dilation`` inputs, so a block
costs only its own samples.

Example:
    >>> model = TCNEffect(48000, channels=16, knobs={"drive": {"default": 0.5, "minimum": 0, "maximum": 1, "unit": "0..1"}})
    >>> y = model.process(x, drive=0.3)
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from neuraudio.nn.conditioning import FiLM, KnobNormalizer, knob_specs
from neuraudio.stream.processor import Processor


class TCNEffect(Processor):
    """Gated causal TCN (mono; channels are processed independently).

    Args:
        sample_rate: Hz.
        channels: width of every layer.
        kernel_size: taps of each dilated convolution.
        layers_per_stack, stacks: dilations ``2**i`` for ``i < layers_per_stack``, repeated ``stacks`` times.
        knobs: as :class:`neuraudio.effects.recurrent.RecurrentEffect`; FiLM in every layer.
    """

    task = "effect"

    def __init__(self, sample_rate: int = 48000, channels: int = 16, kernel_size: int = 3, layers_per_stack: int = 10,
                 stacks: int = 1, knobs: Mapping[str, Mapping] | None = None):
        super().__init__(sample_rate, hop=1)
        if channels < 1 or kernel_size < 2 or layers_per_stack < 1 or stacks < 1:
            raise ValueError("channels, layers_per_stack and stacks must be >= 1 and kernel_size >= 2.")
        knobs = dict(knobs or {})
        self.knobs = knob_specs(knobs)
        self.normalize = KnobNormalizer(knobs) if knobs else None
        self.dilations = [2**i for _ in range(stacks) for i in range(layers_per_stack)]
        self.kernel_size = kernel_size
        self.input = nn.Conv1d(1, channels, 1)
        self.convs = nn.ModuleList(nn.Conv1d(channels, 2 * channels, kernel_size, dilation=d) for d in self.dilations)
        self.films = nn.ModuleList(FiLM(len(knobs), 2 * channels) for _ in self.dilations) if knobs else None
        self.residuals = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in self.dilations)
        self.head = nn.Conv1d(channels * len(self.dilations), 1, 1)

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def _condition(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        return None if self.normalize is None else self.normalize.rows(x, knobs)

    def _run(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor], caches: list[torch.Tensor] | None):
        """``caches[i]``: the last ``(k-1)*d`` inputs of layer ``i`` (streaming); ``None``: zero history."""
        lead, length = x.shape[:-1], x.shape[-1]
        condition = self._condition(x, knobs)
        h = self.input(x.reshape(-1, 1, length))
        skips = []
        for i, (conv, residual, d) in enumerate(zip(self.convs, self.residuals, self.dilations)):
            history = (self.kernel_size - 1) * d
            if caches is None:
                padded = nn.functional.pad(h, (history, 0))
            else:
                padded = torch.cat([caches[i], h], dim=-1)
                caches[i] = padded[..., padded.shape[-1] - history :]
            z = conv(padded)
            if self.films is not None:
                z = self.films[i](z.transpose(1, 2), condition).transpose(1, 2)
            a, b = z.chunk(2, dim=1)
            out = torch.tanh(a) * torch.sigmoid(b)
            skips.append(out)
            h = h + residual(out)
        y = self.head(torch.cat(skips, dim=1)).reshape(*lead, length)
        return x + y

    def forward(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self._run(x, knobs, None)

    def init_state(self, channels: int, max_samples: int, device) -> list[torch.Tensor]:
        width = self.input.out_channels
        return [torch.zeros(channels, width, (self.kernel_size - 1) * d, device=device) for d in self.dilations]

    def step(self, x: torch.Tensor, state: list[torch.Tensor], knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self._run(x, {n: v.expand(x.shape[0], -1) for n, v in knobs.items()}, state)
