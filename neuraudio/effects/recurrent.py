"""Recurrent effect model: an LSTM over the samples, knob-conditioned, with a residual input path.

    y[n] = x[n] + W * FiLM(LSTM([x; c])[n], c)          (conditioning="film": c only in FiLM)
    y[n] = x[n] + W * LSTM([x; c])[n]                   (conditioning="concat": c as extra input channels)

``c`` is the per-sample vector of normalised knobs. FiLM acts on the LSTM's outputs, outside the recurrence, so the
LSTM stays one fused call per block (a Python loop per sample would not run in real time). Zero latency; the stream
state is the LSTM's ``(h, c)`` (and, with the silence gate, the length of the input's current run of zeros).

Optional digital-silence gate (``silence_gate=N``): once the input has been exactly 0.0 for N samples in a row, the
output is exactly 0.0 until the input is nonzero again; the LSTM keeps running underneath. It is for captures whose
output was cut to digital silence wherever the input was (e.g. clips padded with zeros on both sides); a real input
never holds exact zeros for long, so elsewhere it does nothing. Off (0) by default.

Offline, long inputs run through the LSTM in chunks of ``CHUNK`` samples with the state carried: the same numbers,
without the fused kernel's workspace for a whole file (which grows with the length and failed on minutes of audio).

Example:
    >>> model = RecurrentEffect(44100, knobs={"gain": {"default": 0.5, "minimum": 0, "maximum": 1, "unit": "0..1"}})
    >>> y = model.process(x, gain=0.8)
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from neuraudio.nn.conditioning import FiLM, KnobNormalizer, knob_specs
from neuraudio.stream.processor import Processor

CONDITIONING = ("film", "concat", "both")
CHUNK = 8192  # samples per fused LSTM call offline (faster and leaner than one call: benchmarks in the card)


def zero_run(x: torch.Tensor, before: torch.Tensor | int = 0) -> torch.Tensor:
    """Length of the run of exact zeros ending at each sample of ``x`` (``(..., T)``); ``before``: the run carried
    into this block (per row, or 0)."""
    index = torch.arange(x.shape[-1], device=x.device)
    last_nonzero = torch.where(x != 0, index, -1).cummax(dim=-1).values
    if isinstance(before, torch.Tensor):
        before = before[..., None]
    return torch.where(last_nonzero >= 0, index - last_nonzero, index + 1 + before)


class RecurrentEffect(Processor):
    """LSTM effect model (mono; channels are processed independently).

    Args:
        sample_rate: Hz.
        hidden_size: LSTM width (16-64 runs in real time on one CPU thread at 128-sample blocks).
        knobs: ``{name: {"default", "minimum", "maximum", "unit"[, "scale": "log" | "audio"]}}``; empty for a fixed capture.
        conditioning: ``"film"``, ``"concat"`` or ``"both"``.
        silence_gate: samples of exact-zero input after which the output is exact zero (0: no gate).

    A knob-set input gain ("drive") and dry-path gain ("blend") were tried for interpolating the Klon's gain knob and
    removed: neither helped (pretrained/klon-centaur/README.md keeps the figures).
    """

    task = "effect"

    def __init__(self, sample_rate: int = 48000, hidden_size: int = 32, knobs: Mapping[str, Mapping] | None = None,
                 conditioning: str = "film", silence_gate: int = 0):
        super().__init__(sample_rate, hop=1)
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning must be one of {', '.join(CONDITIONING)}, got {conditioning!r}.")
        if int(silence_gate) != silence_gate or silence_gate < 0:
            raise ValueError(f"silence_gate must be a whole number of samples >= 0, got {silence_gate!r}.")
        self.silence_gate = int(silence_gate)
        knobs = dict(knobs or {})
        self.knobs = knob_specs(knobs)
        self.conditioning = conditioning
        k = len(self.knobs)
        self.normalize = KnobNormalizer(knobs) if k else None
        concat = k if conditioning in ("concat", "both") else 0
        self.lstm = nn.LSTM(1 + concat, hidden_size, batch_first=True)
        self.film = FiLM(k, hidden_size) if k and conditioning in ("film", "both") else None
        self.head = nn.Linear(hidden_size, 1)

    def _run(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor], state=None):
        lead, length = x.shape[:-1], x.shape[-1]
        inputs = x.reshape(-1, length, 1)
        condition = None
        if self.normalize is not None:
            condition = self.normalize.rows(x, knobs)
            if self.conditioning in ("concat", "both"):
                inputs = torch.cat([inputs, condition], dim=-1)
        if length <= CHUNK:
            h, state = self.lstm(inputs, state)
        else:
            parts = []
            for start in range(0, length, CHUNK):
                part, state = self.lstm(inputs[:, start:start + CHUNK], state)
                parts.append(part)
            h = torch.cat(parts, dim=1)
        if self.film is not None:
            h = self.film(h, condition)
        y = x + self.head(h).reshape(*lead, length)
        return y, state

    def forward(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        y = self._run(x, knobs)[0]
        if self.silence_gate:
            y = y.masked_fill(zero_run(x) >= self.silence_gate, 0.0)
        return y

    def init_state(self, channels: int, max_samples: int, device):
        size = (1, channels, self.lstm.hidden_size)
        state = [torch.zeros(size, device=device), torch.zeros(size, device=device)]
        if self.silence_gate:
            state.append(torch.zeros(channels, dtype=torch.long, device=device))  # zeros run so far, capped
        return state

    def load_narrower(self, state: Mapping[str, torch.Tensor], noise: float = 0.01, seed: int = 0) -> int:
        """Start from the weights of the same model with fewer LSTM units (function-preserving widening).

        The old units keep their weights; each new unit gets small random input and recurrent weights (``noise``)
        and no path to the old units or the output, so the widened model computes what the narrower one did, up
        to a few 1e-4 of the new units' leak into nothing, and training can recruit the new units. Returns the
        old width. FiLM models are refused (their MLP would also need widening).
        """
        if self.film is not None:
            raise ValueError("cannot widen a FiLM model (its MLP would also need widening); use concat conditioning.")
        own = self.state_dict().keys()
        needed = set(own)
        if needed - state.keys() or state.keys() - own:
            raise ValueError("cannot start from these weights: they are not a RecurrentEffect with the same parts "
                             f"(missing: {', '.join(sorted(needed - state.keys())) or 'none'}; "
                             f"unexpected: {', '.join(sorted(state.keys() - own)) or 'none'}).")
        old = state["lstm.weight_hh_l0"].shape[1]
        new = self.lstm.hidden_size
        if not 0 < old <= new or state["lstm.weight_ih_l0"].shape[1] != self.lstm.input_size:
            raise ValueError(f"cannot widen this model from {old} to {new} units (same knobs and conditioning, "
                             "a narrower LSTM).")
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in self.lstm.named_parameters():
                src = state[f"lstm.{name}"]
                fresh = noise * torch.randn(param.shape, generator=gen) if "weight" in name else torch.zeros(param.shape)
                for gate in range(4):  # PyTorch's gate blocks i, f, g, o of `new` rows each
                    rows, src_rows = slice(gate * new, gate * new + old), slice(gate * old, (gate + 1) * old)
                    if name.startswith("weight_hh"):
                        fresh[gate * new : (gate + 1) * new, old:] = 0  # new units feed no gate of any unit...
                        fresh[rows, :old] = src[src_rows]
                        fresh[gate * new + old : (gate + 1) * new, old:] = (
                            noise * torch.randn(new - old, new - old, generator=gen))  # ...but their own
                    else:
                        fresh[rows] = src[src_rows]
                param.copy_(fresh)
            self.head.weight.zero_()
            self.head.weight[:, :old] = state["head.weight"]
            self.head.bias.copy_(state["head.bias"])
        return old

    def step(self, x: torch.Tensor, state, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        y, (h, c) = self._run(x, {n: v.expand(x.shape[0], -1) for n, v in knobs.items()}, (state[0], state[1]))
        state[0], state[1] = h, c
        # On the CPU a block without zeros, after a block that did not end in zeros (the usual case), skips the gate.
        if self.silence_gate and (x.is_cuda or bool((x == 0).any()) or bool(state[2].any())):
            run = zero_run(x, state[2])
            y = y.masked_fill(run >= self.silence_gate, 0.0)
            state[2].copy_(run[..., -1].clamp(max=self.silence_gate))
        return y
