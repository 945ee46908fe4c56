"""Spectral noise gate: attenuates each STFT bin whose level stays below a threshold.

Per frame ``k``, bin ``f`` and channel:

* level ``L = 20 * log10(|X| / (sum(window) / 2))`` in dBFS, so a full-scale sine centred on a bin reads 0 dBFS;
* target gain in dB ``t = 0`` when ``L > threshold_db``, else ``t = -reduction_db``;
* gain in dB ``g[k] = t + (g[k-1] - t) * a`` with ``a = exp(-hop / (tau * sample_rate))``, ``tau = attack_ms`` when
  the gate opens (``t > g[k-1]``) and ``release_ms`` when it closes: the gain at one sample depends on many past
  frames. Smoothing in dB makes the release a steady fade in level, as on a hardware gate.

The output is ``istft(10 ** (g / 20) * X)``. Useful on its own to remove low-level hiss and hum between notes or words, and the
reference Processor that exercises the whole streaming STFT path in the tests.

Example:
    >>> gate = SpectralGate(sample_rate=48000)
    >>> y = gate.process(x, threshold_db=-55.0, reduction_db=30.0)      # x: (channels, time)
"""

from __future__ import annotations

from typing import Mapping

import torch

from neuraudio.stream.processor import Knob
from neuraudio.stream.stft import WindowSpec
from neuraudio.stream.stft_processor import STFTProcessor


class SpectralGate(STFTProcessor):
    """Spectral noise gate with attack/release across frames (mono model; channels are independent).

    Args:
        sample_rate: Hz.
        n_fft, hop, window: STFT settings (latency ``n_fft - hop``; a stream reports ``n_fft - 1``).
    """

    task = "effect"

    knobs = {
        "threshold_db": Knob(-60.0, -100.0, 0.0, "dBFS", "bin level below which the gate closes"),
        "reduction_db": Knob(24.0, 0.0, 80.0, "dB", "attenuation of a closed bin"),
        "attack_ms": Knob(5.0, 0.1, 100.0, "ms", "time constant of opening"),
        "release_ms": Knob(150.0, 5.0, 2000.0, "ms", "time constant of closing"),
    }

    def __init__(self, sample_rate: int = 48000, n_fft: int = 1024, hop: int = 256, window: WindowSpec = "hann"):
        super().__init__(sample_rate, n_fft, hop, window)
        self.full_scale = float(self.window.sum()) / 2

    def init_frame_state(self, lead: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """The gain (dB) of every bin after the last frame, ``(*lead, n_fft // 2 + 1)``; the gate starts open."""
        return torch.zeros(*lead, self.n_fft // 2 + 1, device=device)

    def process_frames(self, spec: torch.Tensor, state: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        # knobs are (..., frames); add the channel and bin axes: (..., 1, 1, frames).
        k = {name: value[..., None, None, :] for name, value in knobs.items()}
        frame_s = self.hop / self.sample_rate
        open_coef = torch.exp(-frame_s * 1000.0 / k["attack_ms"])
        close_coef = torch.exp(-frame_s * 1000.0 / k["release_ms"])
        closed = -k["reduction_db"]
        level_db = 20.0 * torch.log10(spec.abs().clamp_min(1e-12) / self.full_scale)
        target = torch.where(level_db > k["threshold_db"], torch.zeros_like(closed), closed)
        target, open_coef, close_coef = torch.broadcast_tensors(target, open_coef, close_coef)
        if target.shape[:-1] != state.shape:
            raise ValueError(f"frames shaped {tuple(spec.shape)} do not match the gate state {tuple(state.shape)}.")
        gains = torch.empty(target.shape, device=spec.device)
        g = state
        # A first-order recursion with a data-dependent pole: a loop over frames, vectorised over bins.
        for i in range(target.shape[-1]):
            t = target[..., i]
            coef = torch.where(t > g, open_coef[..., i], close_coef[..., i])
            g = t + (g - t) * coef
            gains[..., i] = g
        state.copy_(g)
        return spec * torch.pow(10.0, gains / 20.0)
