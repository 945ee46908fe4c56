"""Classical speech denoiser: log-spectral-amplitude MMSE gain (Ephraim & Malah, 1985) with the decision-directed a
priori SNR and an MCRA noise tracker (Cohen & Berdugo, 2002), causal and streaming, frame by frame.

Per frame, bin and channel, with ``P = |X|^2``:

* noise tracking (MCRA): ``S`` = power smoothed over time and 3 neighbouring bins; ``S_min`` its minimum over about
  ``1.5 s`` (two running minima, swapped every ``window`` frames); speech is likely present where
  ``S > delta * S_min``; the noise estimate ``N`` follows ``P`` with a time constant that freezes where speech is
  present (speech presence smoothed to ``p``, ``a_N = 0.95 + 0.05 p``);
* a posteriori SNR ``gamma = P / N``; a priori SNR ``xi = 0.98 G_prev^2 gamma_prev + 0.02 max(gamma - 1, 0)``;
* gain ``G = xi / (1 + xi) * exp(E1(v) / 2)``, ``v = xi gamma / (1 + xi)``, floored at ``-reduction_db``.

Example:
    >>> model = neuraudio.load("denoise-mmse")                  # 16 kHz, 32 ms frames, 8 ms hop
    >>> clean = model.process(noisy, reduction_db=20.0)
"""

from __future__ import annotations

from typing import Mapping

import torch

from neuraudio.stream.knobs import Knob
from neuraudio.stream.stft_processor import STFTProcessor


def exp1(x: torch.Tensor) -> torch.Tensor:
    """The exponential integral ``E1(x) = int_x^inf e^-t / t dt`` for ``x > 0``, by Swamee & Ohija's closed form
    (2003; within 2.5 % of scipy's on 1e-3..20, which moves the gain ``exp(E1 / 2)`` by under 0.3 dB), saturating
    to 0 above 50."""
    x = x.double().clamp(1e-12, 50.0)
    a = torch.log((0.56146 / x + 0.65) * (1.0 + x))
    b = x.pow(4) * torch.exp(7.7 * x) * (2.0 + x).pow(3.7)
    return (a.pow(-7.7) + b).pow(-0.13)


def init_mmse_state(lead: tuple[int, ...], bins: int, device=None) -> dict:
    """Fresh state of :func:`mmse_gain` for frames ``(*lead, bins)``."""
    zeros = torch.zeros(*lead, bins, dtype=torch.float64, device=device)
    return {"started": False, "count": 0, "smoothed": zeros.clone(), "minimum": zeros.clone(),
            "candidate": zeros.clone(), "noise": zeros.clone(), "presence": zeros.clone(),
            "previous": zeros.clone()}  # previous: G^2 * gamma of the last frame


def mmse_gain(power: torch.Tensor, across: torch.Tensor, state: dict, floor, window_frames: int) -> torch.Tensor:
    """One frame of the module docstring's recursion: the log-MMSE gain ``(..., bins)`` (float64) for the power
    ``P`` of a frame and the same power smoothed over neighbouring bins, updating the MCRA tracker in ``state``;
    ``floor``: the lowest gain (linear); ``window_frames``: frames per half of the minimum search. Used by
    :class:`LogMMSE` and by the echo canceller's noise postfilter."""
    p = power.double()
    across = across.double()
    if not state["started"]:
        for key in ("smoothed", "minimum", "candidate", "noise"):
            state[key] = across.clone()
        state["previous"] = torch.ones_like(p)
        state["started"] = True
    smoothed = 0.8 * state["smoothed"] + 0.2 * across
    minimum = torch.minimum(state["minimum"], smoothed)
    candidate = torch.minimum(state["candidate"], smoothed)
    state["count"] += 1
    if state["count"] >= window_frames:  # a new sub-window: the minimum forgets the old one
        minimum, candidate, state["count"] = torch.minimum(candidate, smoothed), smoothed, 0
    speech = (smoothed > 5.0 * minimum.clamp_min(1e-20)).double()
    presence = 0.2 * state["presence"] + 0.8 * speech
    rate = 0.95 + 0.05 * presence
    noise = rate * state["noise"] + (1.0 - rate) * p
    gamma = p / noise.clamp_min(1e-20)
    xi = (0.98 * state["previous"] + 0.02 * (gamma - 1.0).clamp_min(0.0)).clamp_min(10 ** (-25 / 10))
    v = xi / (1.0 + xi) * gamma
    gain = xi / (1.0 + xi) * torch.exp(0.5 * exp1(v))
    gain = torch.maximum(gain.clamp_max(1.0), torch.as_tensor(floor, dtype=gain.dtype, device=gain.device))
    state.update(smoothed=smoothed, minimum=minimum, candidate=candidate, noise=noise, presence=presence,
                 previous=gain.pow(2) * gamma)
    return gain


def mmse_gains(power: torch.Tensor, state: dict, floor: torch.Tensor, window_frames: int) -> torch.Tensor:
    """:func:`mmse_gain` over frames: gains ``(..., bins, frames)`` (float64) for powers ``|X|^2`` of the same shape,
    updating ``state`` frame by frame; ``floor``: the lowest gain, a number or ``(..., 1, frames)`` (a per-frame
    knob). The powers are smoothed over neighbouring bins (0.25, 0.5, 0.25; edges repeated) here, all frames at once:
    that part has no state."""
    power = power.double()
    edges = torch.cat([power[..., :1, :], power, power[..., -1:, :]], dim=-2)
    across = 0.25 * edges[..., :-2, :] + 0.5 * power + 0.25 * edges[..., 2:, :]
    floor = torch.as_tensor(floor, dtype=power.dtype, device=power.device)
    gains = torch.empty_like(power)
    for i in range(power.shape[-1]):
        gains[..., i] = mmse_gain(power[..., i], across[..., i], state, floor[..., i] if floor.ndim else floor,
                                  window_frames)
    return gains


class LogMMSE(STFTProcessor):
    """Log-MMSE speech denoiser with an MCRA noise tracker (mono model; channels are independent).

    Args:
        sample_rate: Hz.
        n_fft, hop: STFT frame and hop (hann window); latency ``n_fft - hop``.
        minimum_seconds: span of the noise tracker's minimum search.
    """

    task = "enhancement"
    knobs = {"reduction_db": Knob(20.0, 0.0, 40.0, "dB", "the most a bin is attenuated (the gain floor)")}

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop: int = 128, minimum_seconds: float = 1.5):
        super().__init__(sample_rate, n_fft, hop, "hann")
        self.window_frames = max(2, round(minimum_seconds * sample_rate / hop / 2))  # two sub-windows per search

    def init_frame_state(self, lead: tuple[int, ...], device: torch.device) -> dict:
        return init_mmse_state(lead, self.n_fft // 2 + 1, device)

    def process_frames(self, spec: torch.Tensor, state: dict, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        floor = torch.pow(10.0, -knobs["reduction_db"].double() / 20.0)  # (..., frames)
        gains = mmse_gains(spec.abs().double().pow(2), state, floor[..., None, :], self.window_frames)
        return spec * gains.to(spec.real.dtype)
