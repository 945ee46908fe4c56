"""Gain-computer effect model for dynamics processors (compressors, limiters, gates, expanders).

A dynamics processor multiplies its input by a slowly varying gain that depends on the input's level history and
the knobs. This model keeps that structure and learns the rest:

    per frame k of ``hop`` samples:  p[k] = peak level in dB, e[k] = RMS level in dB, c[k] = normalised knobs
    g[k]  = G tanh(head(LSTM([p, e, c][0..k])) / G)     gain in dB, within +-G (``max_gain_db``; 0 at
                                                         initialisation: the identity)
    gain for sample j of frame k   = g[k-1] + (g[k] - g[k-1]) (j + 1) / hop     (linear, no zipper steps)
    y = x * 10 ** (gain / 20)

The LSTM runs at the frame rate (``sample_rate / hop``, 3 kHz at 48 kHz with hop 16), which gives it a long view
(release times of a second) at a small cost, and the multiplicative output means an error in the learned gain
costs little ESR. A frame's gain uses the frame's own samples, so the streaming form waits for whole frames:
``Stream.latency`` is ``hop - 1`` samples (0.31 ms at 48 kHz with hop 16); offline ``process`` is aligned.

Example:
    >>> model = GainEffect(48000, knobs={"threshold_db": {"default": -20, "minimum": -60, "maximum": 0, "unit": "dBFS"}})
    >>> y = model.process(x, threshold_db=-30.0)
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from neuraudio.nn.conditioning import KnobNormalizer, knob_specs
from neuraudio.stream.processor import Processor

FLOOR_DB = -100.0


class GainEffect(Processor):
    """Learned gain computer (mono; channels are processed independently, each with its own detector).

    Args:
        sample_rate: Hz.
        hidden_size: LSTM width.
        hop: samples per control frame.
        knobs: ``{name: {"default", "minimum", "maximum", "unit"[, "scale"]}}``; they enter the LSTM's input.
        max_gain_db: the gain stays within +-this many dB.
    """

    def __init__(self, sample_rate: int = 48000, hidden_size: int = 32, hop: int = 16,
                 knobs: Mapping[str, Mapping] | None = None, max_gain_db: float = 60.0):
        super().__init__(sample_rate, hop=hop)
        if max_gain_db <= 0:
            raise ValueError(f"max_gain_db must be positive, got {max_gain_db}.")
        self.max_gain_db = float(max_gain_db)
        knobs = dict(knobs or {})
        self.knobs = knob_specs(knobs)
        self.normalize = KnobNormalizer(knobs) if knobs else None
        self.lstm = nn.LSTM(2 + len(knobs), hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        ramp = torch.arange(1, hop + 1, dtype=torch.float32) / hop
        self.register_buffer("ramp", ramp, persistent=False)

    def _frame_features(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``x``: ``(rows, T)`` -> ``(rows, T // hop, 2 + K)``."""
        rows, length = x.shape
        frames = x.reshape(rows, length // self.hop, self.hop)
        peak = 20 * torch.log10(frames.abs().amax(-1).clamp_min(10 ** (FLOOR_DB / 20)))
        rms = 10 * torch.log10(frames.square().mean(-1).clamp_min(10 ** (FLOOR_DB / 10)))
        features = [(peak / 50 + 1).unsqueeze(-1), (rms / 50 + 1).unsqueeze(-1)]
        if self.normalize is not None:
            # the knob value at each frame's last sample
            c = self.normalize.rows(x, knobs)[:, self.hop - 1 :: self.hop, :]
            features.append(c)
        return torch.cat(features, dim=-1)

    def _run(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor], state=None):
        lead, length = x.shape[:-1], x.shape[-1]
        flat = x.reshape(-1, length)
        rows, frames = flat.shape[0], length // self.hop
        lstm_state, previous = (None, flat.new_zeros(rows, 1)) if state is None else state
        # knobs per batch item (..., T) or per row (..., channels, T), flattened to one row per signal row
        knob_rows = {n: (v.unsqueeze(-2).expand(*lead, length) if v.ndim < x.ndim else v).reshape(-1, length)
                     for n, v in knobs.items()}
        h, lstm_state = self.lstm(self._frame_features(flat, knob_rows), lstm_state)
        # bounded gain: an untrained or diverging head cannot blow the output up
        g = self.max_gain_db * torch.tanh(self.head(h).squeeze(-1) / self.max_gain_db)  # (rows, frames) dB
        before = torch.cat([previous, g[:, :-1]], dim=1)
        gain_db = before.unsqueeze(-1) + (g - before).unsqueeze(-1) * self.ramp  # (rows, frames, hop)
        y = flat * torch.pow(10.0, gain_db.reshape(rows, frames * self.hop) / 20)
        return y.reshape(*lead, length), (lstm_state, g[:, -1:])

    def forward(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self._run(x, knobs)[0]

    def init_state(self, channels: int, max_samples: int, device):
        size = (1, channels, self.lstm.hidden_size)
        return [torch.zeros(size, device=device), torch.zeros(size, device=device),
                torch.zeros(channels, 1, device=device)]

    def step(self, x: torch.Tensor, state, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        y, ((h, c), last) = self._run(x, knobs, ((state[0], state[1]), state[2]))
        state[0], state[1], state[2] = h, c, last
        return y
