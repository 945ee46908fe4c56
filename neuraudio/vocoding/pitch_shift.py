"""Streaming pitch shifter: a phase vocoder that moves every partial by ``2 ** (semitones / 12)`` in the frequency
domain, frame by frame (causal, the same numbers offline and streaming). Formants move with the pitch.

Per frame and bin ``k``: the instantaneous frequency ``w_k`` comes from the phase advance since the last frame, and
the bin's synthesis phase advances by ``r w_k hop``. Each spectral peak moves to bin ``round(peak r)`` with the
bins around it (identity phase locking, Laroche & Dolson 1999: they keep their phase offsets to the peak, so a
partial's main lobe stays one lobe). At 0 semitones the output is the input, delayed by ``n_fft - hop``.

Example:
    >>> shifter = neuraudio.load("pitch-shift")
    >>> up = shifter.process(voice, semitones=5.0)
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from neuraudio.stream.knobs import Knob
from neuraudio.stream.stft_processor import STFTProcessor
from neuraudio.vocoding.phase_vocoder import nearest_peaks


class PitchShift(STFTProcessor):
    """Phase-vocoder pitch shifter (mono model; channels are independent).

    Args:
        sample_rate: Hz.
        n_fft, hop: STFT frame and hop (hann window; hop at most n_fft / 4 for clean partials).
    """

    task = "effect"
    knobs = {"semitones": Knob(0.0, -12.0, 12.0, "semitones", "pitch change (formants move with it)")}
    knob_time_constant_ms = 5.0

    def __init__(self, sample_rate: int = 48000, n_fft: int = 2048, hop: int = 512):
        super().__init__(sample_rate, n_fft, hop, "hann")
        bins = n_fft // 2 + 1
        self.register_buffer("expected", 2 * math.pi * hop * torch.arange(bins, dtype=torch.float64) / n_fft,
                             persistent=False)

    def init_frame_state(self, lead: tuple[int, ...], device: torch.device) -> Any:
        bins = self.n_fft // 2 + 1
        zeros = torch.zeros(*lead, bins, dtype=torch.float64, device=device)
        return {"phase_in": zeros.clone(), "synthesis": zeros.clone()}

    def process_frames(self, spec: torch.Tensor, state: Any, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        bins = spec.shape[-2]
        expected = self.expected.to(spec.device)
        index = torch.arange(bins, device=spec.device)
        ratio = torch.pow(2.0, knobs["semitones"].double() / 12.0)  # (..., frames)
        out = torch.empty_like(spec)
        for i in range(spec.shape[-1]):
            frame = spec[..., i]
            magnitude, phase = frame.abs().double(), frame.angle().double()
            delta = phase - state["phase_in"] - expected
            advance = expected + delta - 2 * math.pi * torch.round(delta / (2 * math.pi))  # w_k * hop
            state["phase_in"] = phase
            r = ratio[..., i][..., None, None]
            # every bin's synthesis phase advances r times as fast as its analysis phase
            synthesis = state["synthesis"] + r * advance
            state["synthesis"] = torch.remainder(synthesis + math.pi, 2 * math.pi) - math.pi
            # identity phase locking: the region around each peak moves as a whole, its bins keep their phase
            # offsets to the peak (the main lobe stays one lobe)
            peaks = nearest_peaks(magnitude)
            target = index + torch.round(peaks * r).long() - peaks
            valid = (target >= 0) & (target < bins)
            locked = torch.gather(state["synthesis"], -1, peaks) + phase - torch.gather(phase, -1, peaks)
            weight = torch.where(valid, magnitude, torch.zeros_like(magnitude))
            target = torch.where(valid, target, torch.zeros_like(target))
            real = torch.zeros_like(magnitude).scatter_add_(-1, target, weight * torch.cos(locked))
            imag = torch.zeros_like(magnitude).scatter_add_(-1, target, weight * torch.sin(locked))
            out[..., i] = torch.complex(real, imag).to(spec.dtype)
        return out
