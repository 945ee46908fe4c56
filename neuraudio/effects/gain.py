"""Gain-computer effect models for dynamics processors (compressors, limiters, gates, expanders).

A dynamics processor multiplies its input by a slowly varying gain that depends on the input's level history and
the knobs. Both models here keep that structure and learn the rest. Per frame ``k`` of ``hop`` samples they read

    p[k] = peak level in dB,  e[k] = RMS level in dB,  c[k] = normalised knobs (at the frame's last sample)

and set a gain ``g[k]`` in dB, interpolated linearly inside the frame (no zipper steps) and applied to the input:

    gain for sample j of frame k = g[k-1] + (g[k] - g[k-1]) (j + 1) / hop,     y = x * 10 ** (gain / 20)

* :class:`GainEffect`: ``g[k] = G tanh(head(LSTM([p, e, c][0..k])) / G)`` (within +-G = ``max_gain_db``).
* :class:`GatedGainEffect`: the recurrence is the ballistics of a dynamics processor, with every term learned. An
  MLP of ``[p, e, c]`` gives a target gain reduction ``t[k]`` (dB) and two time constants (attack, release); a
  linear map of the knobs alone gives a make-up gain ``m`` (dB); one state ``s`` (dB of reduction) follows the
  target through a gated one-pole::

      rate[k] = 1 - exp(-hop / (tau fs)),  tau = tau_attack[k] if t[k] > s[k-1] else tau_release[k]
      s[k]    = s[k-1] + rate[k] (t[k] - s[k-1])
      g[k]    = m[k] - s[k]

  This is a gated recurrent unit with a one-dimensional state whose gate is chosen by the sign of the change (the
  "branching" peak detector of Giannoulis, Massberg & Reiss 2012); the MLP decides the static curve and how the
  time constants depend on the knobs and on the programme. It trains in minutes where the LSTM's long memory
  (releases of a second are thousands of frames) is slow to learn. The make-up gain does not see the level: a
  level-dependent make-up would bypass the ballistics, and in training it did (in an ad hoc fit of one compressor
  setting, not in the repo, it stalled near ESR 0.1 where the knob-only make-up reached 0.0004; the repo's test
  ``test_gated_gain_effect_learns_a_compressor_quickly`` asserts <= 0.02 in 300 steps).

Both run at the frame rate (``sample_rate / hop``, 3 kHz at 48 kHz with hop 16) and start as the identity (0 dB).
A frame's gain uses the frame's own samples, so the streaming form waits for whole frames: ``Stream.latency`` is
``hop - 1`` samples (0.31 ms at 48 kHz with hop 16); offline ``process`` is aligned.

Example:
    >>> knobs = {"threshold_db": {"default": -20, "minimum": -60, "maximum": 0, "unit": "dBFS"}}
    >>> model = GatedGainEffect(48000, knobs=knobs)
    >>> y = model.process(x, threshold_db=-30.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from neuraudio.nn.conditioning import KnobNormalizer, knob_specs
from neuraudio.stream.processor import Processor

FLOOR_DB = -100.0


class _FrameGain(Processor):
    """Shared frame analysis and gain application; subclasses define ``_frame_gains`` and ``init_state``.

    The streaming state is ``[*core_state, previous_gain]`` with ``previous_gain`` ``(rows, 1)`` in dB.
    """

    task = "effect"

    def __init__(self, sample_rate: int, hop: int, knobs: Mapping[str, Mapping] | None):
        super().__init__(sample_rate, hop=hop)
        knobs = dict(knobs or {})
        self.knobs = knob_specs(knobs)
        self.normalize = KnobNormalizer(knobs) if knobs else None
        self.features = 2 + len(knobs)
        ramp = torch.arange(1, hop + 1, dtype=torch.float32) / hop
        self.register_buffer("ramp", ramp, persistent=False)

    def _frame_features(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``x``: ``(rows, T)``, knobs ``{name: (rows, T)}`` -> ``(rows, T // hop, 2 + K)``."""
        rows, length = x.shape
        frames = x.reshape(rows, length // self.hop, self.hop)
        peak = 20 * torch.log10(frames.abs().amax(-1).clamp_min(10 ** (FLOOR_DB / 20)))
        rms = 10 * torch.log10(frames.square().mean(-1).clamp_min(10 ** (FLOOR_DB / 10)))
        features = [(peak / 20).unsqueeze(-1), (rms / 20).unsqueeze(-1)]  # 1 per 20 dB, 0 at full scale
        if self.normalize is not None:
            # the knob value at each frame's last sample
            features.append(self.normalize({n: v[:, self.hop - 1 :: self.hop] for n, v in knobs.items()}))
        return torch.cat(features, dim=-1)

    def _frame_gains(self, features: torch.Tensor, core_state):
        """``features`` ``(rows, frames, F)`` -> gains ``(rows, frames)`` in dB and the new core state."""
        raise NotImplementedError

    def _run(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor], state=None):
        lead, length = x.shape[:-1], x.shape[-1]
        flat = x.reshape(-1, length)
        rows, frames = flat.shape[0], length // self.hop
        core, previous = (None, flat.new_zeros(rows, 1)) if state is None else (state[:-1], state[-1])
        # knobs per batch item (..., T) or per row (..., channels, T), flattened to one row per signal row
        knob_rows = {n: (v.unsqueeze(-2).expand(*lead, length) if v.ndim < x.ndim else v).reshape(-1, length)
                     for n, v in knobs.items()}
        g, core = self._frame_gains(self._frame_features(flat, knob_rows), core)  # (rows, frames) dB
        before = torch.cat([previous, g[:, :-1]], dim=1)
        gain_db = before.unsqueeze(-1) + (g - before).unsqueeze(-1) * self.ramp  # (rows, frames, hop)
        y = flat * torch.pow(10.0, gain_db.reshape(rows, frames * self.hop) / 20)
        return y.reshape(*lead, length), [*core, g[:, -1:]]

    def forward(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self._run(x, knobs)[0]

    def step(self, x: torch.Tensor, state, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        y, new = self._run(x, knobs, state)
        state[:] = new
        return y


class GainEffect(_FrameGain):
    """Learned gain computer with an LSTM (mono; channels are processed independently, each with its own detector).

    Args:
        sample_rate: Hz.
        hidden_size: LSTM width.
        hop: samples per control frame.
        knobs: ``{name: {"default", "minimum", "maximum", "unit"[, "scale"]}}``; they enter the LSTM's input.
        max_gain_db: the gain stays within +-this many dB.
    """

    def __init__(self, sample_rate: int = 48000, hidden_size: int = 32, hop: int = 16,
                 knobs: Mapping[str, Mapping] | None = None, max_gain_db: float = 60.0):
        super().__init__(sample_rate, hop, knobs)
        if max_gain_db <= 0:
            raise ValueError(f"max_gain_db must be positive, got {max_gain_db}.")
        self.max_gain_db = float(max_gain_db)
        self.lstm = nn.LSTM(self.features, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _frame_gains(self, features, core_state):
        h, (h_n, c_n) = self.lstm(features, None if core_state is None else tuple(core_state))
        # bounded gain: an untrained or diverging head cannot blow the output up
        g = self.max_gain_db * torch.tanh(self.head(h).squeeze(-1) / self.max_gain_db)
        return g, [h_n, c_n]

    def init_state(self, channels: int, max_samples: int, device):
        size = (1, channels, self.lstm.hidden_size)
        return [torch.zeros(size, device=device), torch.zeros(size, device=device),
                torch.zeros(channels, 1, device=device)]


class GatedGainEffect(_FrameGain):
    """Learned gain computer with learned attack/release ballistics (mono detector per channel).

    Args:
        sample_rate: Hz.
        hidden_size: width of the MLP's two hidden layers.
        hop: samples per control frame.
        knobs: ``{name: {"default", "minimum", "maximum", "unit"[, "scale"]}}``; they enter the MLP.
        max_gain_db: target reduction and make-up gain stay within +-this many dB.
        time_constant_ms: ``(shortest, longest)`` time constant the ballistics can take, in ms.
    """

    def __init__(self, sample_rate: int = 48000, hidden_size: int = 64, hop: int = 16,
                 knobs: Mapping[str, Mapping] | None = None, max_gain_db: float = 60.0,
                 time_constant_ms: tuple[float, float] = (0.05, 3000.0)):
        super().__init__(sample_rate, hop, knobs)
        shortest, longest = (float(v) for v in time_constant_ms)
        if max_gain_db <= 0 or not 0 < shortest < longest:
            raise ValueError(f"need max_gain_db > 0 and 0 < shortest < longest time constant, got {max_gain_db} "
                             f"and {time_constant_ms}.")
        self.max_gain_db = float(max_gain_db)
        self.log_tau = (math.log(shortest), math.log(longest))
        self.mlp = nn.Sequential(nn.Linear(self.features, hidden_size), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, 3))
        self.makeup = nn.Linear(len(self.knobs), 1)
        for layer in (self.mlp[-1], self.makeup):  # target 0 dB, make-up 0 dB: the identity; time constants mid-range
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _frame_gains(self, features, core_state):
        out = self.mlp(features)  # (rows, frames, 3): target, attack and release time constant, pre-activation
        makeup = self.max_gain_db * torch.tanh(self.makeup(features[..., 2:]).squeeze(-1) / 3)
        s0 = features.new_zeros(features.shape[0]) if core_state is None else core_state[0]
        lo, hi = self.log_tau
        c = 1000.0 * self.hop / self.sample_rate  # frame duration in ms
        if features.device.type == "cpu" and not (torch.is_grad_enabled() and out.requires_grad):
            # Inference on the CPU: the same formulas in float64 NumPy, no autograd bookkeeping (the stream's
            # per-block cost; within float32 rounding of the path below).
            o = out.detach().double().numpy()
            rate = -np.expm1(-c / np.exp(lo + (hi - lo) / (1 + np.exp(-o[..., 1:3]))))
            target = self.max_gain_db * np.tanh(o[..., 0] / 3)
            s = _ballistics_loop(target, rate[..., 0], rate[..., 1], s0.double().numpy())[0]
            s = torch.from_numpy(s).to(out.dtype)
        else:
            target = self.max_gain_db * torch.tanh(out[..., 0] / 3)
            rate = -torch.expm1(-c / torch.exp(lo + (hi - lo) * torch.sigmoid(out[..., 1:3])))
            s = ballistics(target, rate[..., 0], rate[..., 1], s0)
        return makeup - s, [s[:, -1]]

    def init_state(self, channels: int, max_samples: int, device):
        return [torch.zeros(channels, device=device), torch.zeros(channels, 1, device=device)]


def ballistics(target: torch.Tensor, attack: torch.Tensor, release: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
    """The gated one-pole of :class:`GatedGainEffect`: ``s[k] = s[k-1] + r[k] (target[k] - s[k-1])`` with
    ``r = attack`` where ``target[k] > s[k-1]`` else ``release``.

    ``target``, ``attack``, ``release``: ``(rows, frames)``, rates in (0, 1]; ``s0``: ``(rows,)``. Returns ``s``
    ``(rows, frames)``. On the CPU the loop runs in NumPy (float64) with a hand-written backward; elsewhere as a
    loop of tensor operations (slower to train, but capturable in a CUDA graph).
    """
    if target.device.type == "cpu":
        return _CpuBallistics.apply(target, attack, release, s0)
    return _ballistics_torch(target, attack, release, s0)


def _ballistics_torch(target, attack, release, s0):
    s, out = s0, []
    for k in range(target.shape[1]):
        t = target[:, k]
        s = s + torch.where(t > s, attack[:, k], release[:, k]) * (t - s)
        out.append(s)
    return torch.stack(out, dim=1) if out else target.new_zeros(target.shape)


def _ballistics_loop(t: np.ndarray, a: np.ndarray, r: np.ndarray, s0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recursion in float64 (``(rows, frames)`` arrays); returns ``s`` and the rate chosen at each frame. A few
    rows (a stream, a file) loop over Python floats per row; many rows (a training batch) loop over frames with
    NumPy vectorised over the rows."""
    rows, frames = t.shape
    out, chosen = np.empty((rows, frames)), np.empty((rows, frames))
    if rows <= 4:
        for i in range(rows):
            s, ti, ai, ri = float(s0[i]), t[i].tolist(), a[i].tolist(), r[i].tolist()
            si, ci = [0.0] * frames, [0.0] * frames
            for k in range(frames):
                rate = ai[k] if ti[k] > s else ri[k]
                s += rate * (ti[k] - s)
                si[k], ci[k] = s, rate
            out[i], chosen[i] = si, ci
        return out, chosen
    s = s0.copy()
    for k in range(frames):
        rate = np.where(t[:, k] > s, a[:, k], r[:, k])
        s = s + rate * (t[:, k] - s)
        out[:, k], chosen[:, k] = s, rate
    return out, chosen


class _CpuBallistics(torch.autograd.Function):
    @staticmethod
    def forward(ctx, target, attack, release, s0):
        t, a, r = (v.detach().double().numpy() for v in (target, attack, release))
        out, chosen = _ballistics_loop(t, a, r, s0.detach().double().numpy())
        ctx.save_for_backward(target, s0)
        ctx.numpy = (t, out, chosen, a.shape)
        return torch.from_numpy(out).to(target.dtype)

    @staticmethod
    def backward(ctx, grad):
        target, s0 = ctx.saved_tensors
        t, out, chosen, shape = ctx.numpy
        g_out = grad.detach().double().numpy()
        before = np.concatenate([s0.detach().double().numpy()[:, None], out[:, :-1]], axis=1)
        d_target, d_rate = np.empty(shape), np.empty(shape)
        carry = np.zeros(shape[0])
        for k in range(shape[1] - 1, -1, -1):
            carry = carry + g_out[:, k]
            d_target[:, k] = carry * chosen[:, k]
            d_rate[:, k] = carry * (t[:, k] - before[:, k])
            carry = carry * (1 - chosen[:, k])
        attacking = t > before
        grads = (d_target, np.where(attacking, d_rate, 0.0), np.where(attacking, 0.0, d_rate), carry)
        return tuple(torch.from_numpy(g).to(target.dtype) for g in grads)
