"""Spectral helpers shared by vocoders, enhancers and their losses: compression, log-amplitude, phase.

The anti-wrapping phase distances follow the phase-aware vocoding/enhancement literature (APNet, MP-SENet):
a phase error ``d`` is scored by ``|d - 2*pi*round(d / 2*pi)|``, so 2*pi jumps cost nothing. Three views of phase
are compared: instantaneous phase, group delay (difference along frequency) and instantaneous frequency
(difference along time).

Shape convention: spectra are ``(..., freq, frames)``.
"""

from __future__ import annotations

import math

import torch

TWO_PI = 2 * math.pi


def compress(spec: torch.Tensor, power: float = 0.3, eps: float = 1e-8) -> torch.Tensor:
    """Power-law compress a complex spectrum's magnitude (``|X|**power``), keeping its phase."""
    mag = spec.abs().clamp_min(eps)
    return spec * (mag ** (power - 1.0))


def decompress(spec: torch.Tensor, power: float = 0.3, eps: float = 1e-8) -> torch.Tensor:
    """Inverse of :func:`compress`."""
    return compress(spec, 1.0 / power, eps)


def log_amplitude(spec: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Natural-log amplitude ``log(max(|X|, eps))`` of a complex (or already magnitude) spectrum."""
    mag = spec.abs() if spec.is_complex() else spec
    return torch.log(mag.clamp_min(eps))


def wrap(phase: torch.Tensor) -> torch.Tensor:
    """Wrap angles to ``[-pi, pi)``."""
    return torch.remainder(phase + math.pi, TWO_PI) - math.pi


def anti_wrap(d: torch.Tensor) -> torch.Tensor:
    """Anti-wrapping distance ``|d - 2*pi*round(d / (2*pi))|`` in ``[0, pi]``."""
    return (d - TWO_PI * torch.round(d / TWO_PI)).abs()


def group_delay(phase: torch.Tensor) -> torch.Tensor:
    """Negative phase difference along frequency, ``(..., freq - 1, frames)``."""
    return -torch.diff(phase, dim=-2)


def instantaneous_frequency(phase: torch.Tensor) -> torch.Tensor:
    """Phase difference along time, ``(..., freq, frames - 1)``."""
    return torch.diff(phase, dim=-1)


def phase_distances(estimate: torch.Tensor, target: torch.Tensor,
                    weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Mean anti-wrapped instantaneous-phase, group-delay and instantaneous-frequency errors between two phases.

    Args:
        estimate, target: phase angles in radians, ``(..., freq, frames)``.
        weight: optional per-bin weights of the same shape (e.g. the target's compressed magnitude: phase in silent
            bins is noise); a difference's weight is that of its later bin or frame.

    Returns:
        ``{"ip": ..., "gd": ..., "iaf": ...}``, each a scalar tensor (in ``[0, pi]`` without weights; differentiable).
    """
    if estimate.shape != target.shape:
        raise ValueError(f"phase shapes differ: {tuple(estimate.shape)} vs {tuple(target.shape)}.")
    ip = anti_wrap(estimate - target)
    gd = anti_wrap(group_delay(estimate) - group_delay(target))
    iaf = anti_wrap(instantaneous_frequency(estimate) - instantaneous_frequency(target))
    if weight is not None:
        ip, gd, iaf = weight * ip, weight[..., 1:, :] * gd, weight[..., 1:] * iaf
    return {"ip": ip.mean(), "gd": gd.mean(), "iaf": iaf.mean()}


def to_real_imag(magnitude: torch.Tensor, phase: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|X| cos phi, |X| sin phi)``: the real and imaginary parts of a spectrum given by magnitude and phase."""
    return magnitude * torch.cos(phase), magnitude * torch.sin(phase)


def to_magnitude_phase(real: torch.Tensor, imag: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sqrt(re^2 + im^2 + eps), atan2(im, re))``: the wrapped phase in ``(-pi, pi]`` of two real tensors (how a
    phase predictor with two parallel output layers is read); ``eps`` keeps the magnitude's gradient finite at 0."""
    return torch.sqrt(real.pow(2) + imag.pow(2) + eps), torch.atan2(imag, real)


def polar(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """The complex spectrum ``|X| e^{i phi}``."""
    return torch.polar(magnitude, phase)
