"""Reference DSP effects with knobs in units: a log-domain feed-forward compressor and an overdrive.

They make training data over continuous knob ranges, serve as baselines, and are Processors like every model
(offline and streaming give the same numbers; knobs may be per-sample tensors). The per-sample recursions run in a
numba-compiled loop when numba is installed (the ``train`` and ``dev`` extras), else in plain Python (slow).

Compressor (Giannoulis, Massberg & Reiss 2012, log domain, smooth branching peak detector)::

    x_dB = 20 log10(max(|x|, 1e-6))
    static curve with soft knee W = knee_db, threshold T, ratio R:
        y_dB = x_dB                                          if 2 (x_dB - T) < -W
        y_dB = x_dB + (1/R - 1) (x_dB - T + W/2)^2 / (2W)     if |2 (x_dB - T)| <= W
        y_dB = T + (x_dB - T) / R                             otherwise
    gain reduction r = x_dB - y_dB >= 0, smoothed one-pole per sample:
        s[n] = a s[n-1] + (1 - a) r[n],  a = exp(-1 / (tau fs)),  tau = attack_ms if r[n] > s[n-1] else release_ms
    y = x * 10^((makeup_db - s) / 20)

Overdrive::

    u = tanh(10^(drive_db/20) x + 0.2) - tanh(0.2)           (asymmetric soft clipper: odd and even harmonics)
    v = one-pole low-pass of u, cutoff 10^(log10(800) + tone * log10(16000/800)) Hz  (tone 0..1)
    y = 10^(level_db/20) * v
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch

from neuraudio.stream.processor import Knob, Processor

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without the extras
    def njit(*args, **kwargs):
        return (lambda f: f) if not args or not callable(args[0]) else args[0]


@njit(cache=False)
def _branching_smoother(r, attack, release, state):
    """In place over rows: ``r`` (rows, T) gain reduction, per-sample poles ``attack``/``release`` (rows, T)."""
    for i in range(r.shape[0]):
        s = state[i]
        for n in range(r.shape[1]):
            a = attack[i, n] if r[i, n] > s else release[i, n]
            s = a * s + (1.0 - a) * r[i, n]
            r[i, n] = s
        state[i] = s


@njit(cache=False)
def _one_pole(u, pole, state):
    for i in range(u.shape[0]):
        s = state[i]
        for n in range(u.shape[1]):
            s = pole[i, n] * s + (1.0 - pole[i, n]) * u[i, n]
            u[i, n] = s
        state[i] = s


def _rows(x: torch.Tensor, value: torch.Tensor) -> np.ndarray:
    """A per-sample knob ``(..., T)`` broadcast to ``x``'s rows ``(rows, T)`` as float64."""
    if value.ndim < x.ndim:
        value = value.unsqueeze(-2)
    return np.ascontiguousarray(value.expand(x.shape).reshape(-1, x.shape[-1]).detach().cpu().double().numpy())


class _RecursiveDSP(Processor):
    """Shell of a per-sample DSP effect: ``_run(x, knobs, state)`` does the work; the state is one float64 per row
    (channel), ``None`` offline (start from rest)."""

    task = "effect"

    def __init__(self, sample_rate: int = 48000):
        super().__init__(sample_rate, hop=1)

    def _run(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor], state: np.ndarray | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x, knobs):
        return self._run(x, knobs, None)

    def init_state(self, channels, max_samples, device):
        return np.zeros(channels)

    def step(self, x, state, knobs):
        return self._run(x, knobs, state)


class Compressor(_RecursiveDSP):
    """Feed-forward log-domain compressor with soft knee (mono detector per channel)."""

    knobs = {
        "threshold_db": Knob(-20.0, -60.0, 0.0, "dBFS", "level above which gain is reduced"),
        "ratio": Knob(4.0, 1.0, 20.0, ":1", "input dB above threshold per output dB"),
        "attack_ms": Knob(5.0, 0.1, 100.0, "ms", "time constant when the reduction grows"),
        "release_ms": Knob(100.0, 10.0, 1000.0, "ms", "time constant when it shrinks"),
        "knee_db": Knob(6.0, 0.0, 12.0, "dB", "width of the quadratic soft knee"),
        "makeup_db": Knob(0.0, 0.0, 24.0, "dB", "gain after compression"),
    }

    def _run(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor], state: np.ndarray | None) -> torch.Tensor:
        k = {n: _rows(x, v) for n, v in knobs.items()}
        xs = x.reshape(-1, x.shape[-1]).detach().cpu().double().numpy()
        x_db = 20 * np.log10(np.maximum(np.abs(xs), 1e-6))
        t, ratio, knee = k["threshold_db"], k["ratio"], k["knee_db"]
        over = x_db - t
        soft = x_db + (1 / ratio - 1) * (over + knee / 2) ** 2 / (2 * np.maximum(knee, 1e-9))
        y_db = np.where(2 * over < -knee, x_db, np.where(np.abs(2 * over) <= knee, soft, t + over / ratio))
        r = np.ascontiguousarray(x_db - y_db)
        attack = np.exp(-1000.0 / (k["attack_ms"] * self.sample_rate))
        release = np.exp(-1000.0 / (k["release_ms"] * self.sample_rate))
        state = np.zeros(r.shape[0]) if state is None else state
        _branching_smoother(r, attack, release, state)
        gain = 10 ** ((k["makeup_db"] - r) / 20)
        return x * torch.from_numpy(gain).to(x.dtype).reshape(x.shape).to(x.device)



class Overdrive(_RecursiveDSP):
    """Asymmetric tanh overdrive with a tone low-pass and output level."""

    knobs = {
        "drive_db": Knob(12.0, 0.0, 40.0, "dB", "gain into the clipper"),
        "tone": Knob(0.5, 0.0, 1.0, "0..1", "low-pass cutoff from 800 Hz (0) to 16 kHz (1), log scale"),
        "level_db": Knob(-6.0, -24.0, 6.0, "dB", "output level"),
    }
    bias = 0.2

    def _run(self, x, knobs, state):
        k = {n: _rows(x, v) for n, v in knobs.items()}
        xs = x.reshape(-1, x.shape[-1]).detach().cpu().double().numpy()
        u = np.tanh(10 ** (k["drive_db"] / 20) * xs + self.bias) - math.tanh(self.bias)
        cutoff = 10 ** (math.log10(800.0) + k["tone"] * math.log10(16000.0 / 800.0))
        pole = np.exp(-2 * math.pi * np.minimum(cutoff, 0.45 * self.sample_rate) / self.sample_rate)
        u = np.ascontiguousarray(u)
        state = np.zeros(u.shape[0]) if state is None else state
        _one_pole(u, np.ascontiguousarray(pole), state)
        y = 10 ** (k["level_db"] / 20) * u
        return torch.from_numpy(y).to(x.dtype).reshape(x.shape).to(x.device)

