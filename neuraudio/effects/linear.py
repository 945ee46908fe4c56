"""A learned causal FIR filter: the linear baseline of effect modelling (what a capture gives with no nonlinearity).

``y[n] = sum_k h[k] x[n - k] + b`` with ``k = 0 .. receptive_field - 1``. Zero latency; the stream keeps the last
``receptive_field - 1`` input samples. Cheap, exact to train, and the honest floor any nonlinear model must beat.

Example:
    >>> model = LinearEffect(sample_rate=48000, receptive_field=256)
    >>> y = model.process(x)            # x: (..., channels, time)
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from neuraudio.stream.processor import Processor


class LinearEffect(Processor):
    """Causal FIR with a learned impulse response (mono; channels are processed independently).

    Args:
        sample_rate: Hz.
        receptive_field: taps of the impulse response (samples).
        bias: learn a constant output offset.
    """

    task = "effect"

    def __init__(self, sample_rate: int = 48000, receptive_field: int = 128, bias: bool = False):
        super().__init__(sample_rate, hop=1)
        if receptive_field < 1:
            raise ValueError(f"receptive_field must be at least 1 sample, got {receptive_field}.")
        self.receptive_field = receptive_field
        taps = torch.zeros(receptive_field)
        taps[0] = 1.0  # start as the identity
        self.taps = nn.Parameter(taps)
        self.bias = nn.Parameter(torch.zeros(())) if bias else None

    def _filter(self, padded: torch.Tensor) -> torch.Tensor:
        lead, length = padded.shape[:-1], padded.shape[-1]
        kernel = self.taps.flip(0).view(1, 1, -1)
        y = nn.functional.conv1d(padded.reshape(-1, 1, length), kernel).reshape(*lead, -1)
        return y + self.bias if self.bias is not None else y

    def forward(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self._filter(nn.functional.pad(x, (self.receptive_field - 1, 0)))

    def init_state(self, channels: int, max_samples: int, device) -> torch.Tensor:
        return torch.zeros(channels, self.receptive_field - 1, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        padded = torch.cat([state, x], dim=-1)
        state.copy_(padded[..., padded.shape[-1] - state.shape[-1] :])
        return self._filter(padded)
