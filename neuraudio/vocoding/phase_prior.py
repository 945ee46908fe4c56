"""Phase from a magnitude spectrogram alone, by classical DSP: the starting points a neural phase predictor refines.

``phase_vocoder_prior`` is causal (frame ``t`` needs frames ``<= t``), so a streaming vocoder can use it. Each
spectral peak is read as a stationary sinusoid: its frequency comes from a parabola through the log magnitudes of
the peak bin and its two neighbours, its phase advances by ``omega * hop`` per frame, and every bin in the peak's
region takes the peak's phase with the ``-pi * k`` slope that a sinusoid has across the bins of a symmetric window
(for frames that start at sample 0 of the FFT, as ``torch.stft`` lays them out, causal or centred):

    omega_p  = 2 pi (p + delta_p) / n_fft,  delta_p = (a[p-1] - a[p+1]) / (2 (a[p-1] - 2 a[p] + a[p+1]))
    psi_t[k] = psi_{t-1}[k] + omega_{peak(k)} * hop          (per-bin accumulator, float64, wrapped)
    phi_t[k] = psi_t[peak(k)] - pi * k

``griffin_lim_from`` runs fast Griffin-Lim from a given phase (e.g. the phase vocoder's) instead of zeros: it
converges to a better point than a zero start does.

Shapes: magnitudes and phases are ``(..., bins, frames)``.
"""

from __future__ import annotations

import math

import torch

from neuraudio.vocoding.griffin_lim import fast_griffin_lim
from neuraudio.vocoding.phase_vocoder import nearest_peaks

TWO_PI = 2 * math.pi


def peak_frequencies(log_magnitude: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For one frame ``(..., bins)``: each bin's nearest peak and that peak's frequency in bins (parabolic)."""
    peaks = nearest_peaks(log_magnitude)
    bins = log_magnitude.shape[-1]
    left = torch.gather(log_magnitude, -1, (peaks - 1).clamp(0, bins - 1))
    centre = torch.gather(log_magnitude, -1, peaks)
    right = torch.gather(log_magnitude, -1, (peaks + 1).clamp(0, bins - 1))
    curvature = left - 2 * centre + right
    delta = torch.where(curvature < -1e-9, 0.5 * (left - right) / curvature.clamp_max(-1e-9),
                        torch.zeros_like(curvature)).clamp(-0.5, 0.5)
    return peaks, peaks.to(log_magnitude.dtype) + delta


def init_prior_state(lead: tuple[int, ...], bins: int, device=None) -> torch.Tensor:
    """The accumulator ``psi`` (float64, zeros) for :func:`phase_vocoder_prior`."""
    return torch.zeros(*lead, bins, dtype=torch.float64, device=device)


def phase_vocoder_prior(magnitude: torch.Tensor, n_fft: int, hop: int, state: torch.Tensor | None = None,
                        eps: float = 1e-5) -> torch.Tensor:
    """Phase ``(..., bins, frames)`` for ``magnitude`` by peak-locked phase-vocoder integration (module docstring).

    ``state`` (from :func:`init_prior_state`) carries the accumulator across calls and is updated in place, so
    frames fed in pieces give the same phase as all at once."""
    bins, count = magnitude.shape[-2], magnitude.shape[-1]
    psi = init_prior_state(tuple(magnitude.shape[:-2]), bins, magnitude.device) if state is None else state
    if not count:
        return magnitude.new_zeros(magnitude.shape)
    log_magnitude = torch.log(magnitude.double().clamp_min(eps)).transpose(-1, -2)  # (..., frames, bins)
    slope = math.pi * torch.arange(bins, device=magnitude.device, dtype=torch.float64)
    peaks, frequency = peak_frequencies(log_magnitude)
    # each bin advances at its peak's frequency; the running sum in float64 stays exact to ~1e-10 rad for hours
    accumulated = torch.remainder(psi.unsqueeze(-2) + torch.cumsum(frequency * (TWO_PI * hop / n_fft), dim=-2), TWO_PI)
    psi.copy_(accumulated[..., -1, :])
    phase = torch.remainder(torch.gather(accumulated, -1, peaks) - slope + math.pi, TWO_PI) - math.pi
    return phase.transpose(-1, -2).to(magnitude.dtype)


def griffin_lim_from(magnitude: torch.Tensor, phase: torch.Tensor, transform, n_iter: int = 32,
                     momentum: float = 0.99, length: int | None = None) -> torch.Tensor:
    """Phase after ``n_iter`` fast Griffin-Lim iterations (Perraudin et al., 2013) started from ``phase``."""
    angles = torch.polar(torch.ones_like(magnitude), phase)
    return fast_griffin_lim(magnitude, angles, transform, n_iter, momentum, length).angle()


def init_rtisi_state(lead: tuple[int, ...], n_fft: int, hop: int, device=None,
                     dtype=torch.float32) -> torch.Tensor:
    """The overlap-add tail (``(..., n_fft - hop)``, zeros) for :func:`rtisi_prior`."""
    return torch.zeros(*lead, n_fft - hop, dtype=dtype, device=device)


def rtisi_normalisation(window: torch.Tensor, hop: int) -> torch.Tensor:
    """The window power a frame's samples have from this frame and the earlier frames that overlap it (later frames
    are not known yet), floored at 1e-3 of the peak: what :func:`rtisi_prior` divides by."""
    n_fft = window.numel()
    power = window.pow(2)
    partial = power.clone()
    for j in range(1, -(-n_fft // hop)):
        partial[: n_fft - j * hop] += power[j * hop :]
    return torch.maximum(partial, 1e-3 * power.max())  # no host sync: a CUDA graph can capture this


def rtisi_prior(magnitude: torch.Tensor, window: torch.Tensor, hop: int, n_iter: int = 4,
                state: torch.Tensor | None = None, init: torch.Tensor | None = None,
                partial: torch.Tensor | None = None) -> torch.Tensor:
    """Phase ``(..., bins, frames)`` by real-time iterative spectrogram inversion without lookahead (RTISI, Beauregard,
    Zhu & Wyse, 2005): causal, frame by frame.

    For frame ``t`` the frames before it are committed: their overlap-add over the frame's span, plus this frame's
    own inverse, normalised by the window power summed so far, is the current estimate of the signal there; its
    spectrum's phase, with the target magnitude, gives the next inverse (``n_iter`` times). The first estimate
    takes ``init`` (e.g. :func:`phase_vocoder_prior`'s phase) or, without it, the committed frames alone.

    ``state`` (from :func:`init_rtisi_state`) carries the overlap-add tail and is updated in place; ``partial``:
    :func:`rtisi_normalisation` of the window, precomputed (a stream's per-block calls skip recomputing it)."""
    n_fft = window.numel()
    count = magnitude.shape[-1]
    lead = tuple(magnitude.shape[:-2])
    tail = init_rtisi_state(lead, n_fft, hop, magnitude.device, magnitude.dtype) if state is None else state
    window = window.to(magnitude.device, magnitude.dtype)
    partial = rtisi_normalisation(window, hop) if partial is None else partial
    committed = torch.nn.functional.pad(tail, (0, hop))
    out = []
    for t in range(count):
        target = magnitude[..., t]
        if init is not None:
            phase = init[..., t]
            frame = torch.fft.irfft(torch.polar(target, phase), n=n_fft)
        else:
            frame = torch.zeros(*lead, n_fft, dtype=magnitude.dtype, device=magnitude.device)
            phase = torch.zeros_like(target)
        for i in range(n_iter + (init is None)):
            estimate = (committed + window * frame) / partial
            phase = torch.fft.rfft(window * estimate, n=n_fft).angle()
            frame = torch.fft.irfft(torch.polar(target, phase), n=n_fft)
        out.append(phase)
        committed = torch.nn.functional.pad((committed + window * frame)[..., hop:], (0, hop))
    tail.copy_(committed[..., : n_fft - hop])
    if not out:
        return magnitude.new_zeros(magnitude.shape)
    return torch.stack(out, dim=-1)
