"""Training losses, each a plain function of ``(estimate, target)`` tensors shaped ``(..., time)`` (or spectra).

Every function reduces to a scalar tensor and is differentiable. ESR, MR-STFT and SI-SDR are the metrics of
:mod:`neuraudio.metrics` themselves (one definition for training, evaluation and capture checks); the rest are
training-only terms.

    DC      = mean(y - y^)^2 / mean(y^2)
    SI-SDR loss = - SI-SDR
"""

from __future__ import annotations

import torch

from neuraudio.metrics import EPS, esr, masked_sum, mrstft, pre_emphasis, si_sdr
from neuraudio.stream import spectral

__all__ = ["EPS", "complex_spectrum_loss", "compressed_magnitude_l1", "dc_loss", "esr", "mrstft", "phase_losses",
           "pre_emphasis", "si_sdr", "si_sdr_loss"]


def dc_loss(estimate: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Squared mean error relative to the target's mean power."""
    count = torch.tensor(float(target.shape[-1])) if mask is None else mask.sum(-1).clamp_min(1.0)
    mean_err = masked_sum(target - estimate, mask) / count          # per item and channel
    power = (masked_sum(target.pow(2), mask) / count).mean()
    return mean_err.pow(2).mean() / (power + EPS)


def si_sdr_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -si_sdr(estimate, target)


def compressed_magnitude_l1(estimate_spec: torch.Tensor, target_spec: torch.Tensor, power: float = 0.3) -> torch.Tensor:
    """L1 between power-law compressed magnitudes of two complex spectra."""
    return (estimate_spec.abs().clamp_min(EPS) ** power - target_spec.abs().clamp_min(EPS) ** power).abs().mean()


def complex_spectrum_loss(estimate_spec: torch.Tensor, target_spec: torch.Tensor, power: float = 0.3) -> torch.Tensor:
    """Mean squared distance between power-law compressed complex spectra (magnitude compressed, phase kept)."""
    diff = spectral.compress(estimate_spec, power) - spectral.compress(target_spec, power)
    return diff.abs().pow(2).mean()


def phase_losses(estimate_spec: torch.Tensor, target_spec: torch.Tensor) -> dict[str, torch.Tensor]:
    """Anti-wrapping instantaneous-phase, group-delay and instantaneous-frequency losses (see ``stream.spectral``)."""
    return spectral.phase_distances(estimate_spec.angle(), target_spec.angle())
