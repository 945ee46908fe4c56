"""Training losses, each a plain function of ``(estimate, target)`` tensors shaped ``(..., time)`` (or spectra).

Every function reduces to a scalar tensor and is differentiable. ESR and DC pool the whole batch (sums over all
items, then the ratio): per-item ratios explode on crops whose target is nearly silent or mostly masked. ``mask`` arguments
(``(..., time)``, 1 = counts, 0 = ignored, e.g. a simulator's start-up transient) restrict a loss to part of the
signal.

    ESR     = sum((H y - H y^)^2) / sum((H y)^2),   H = 1 - 0.85 z^-1 (pre-emphasis)    (Wright & Valimaki)
    DC      = mean(y - y^)^2 / mean(y^2)
    MR-STFT = sum over resolutions of  ||S - S^||_F / ||S||_F  +  mean|log S - log S^|   (S: STFT magnitudes)
    SI-SDR  = 10 log10(||a y||^2 / ||a y - y^||^2),  a = <y^, y> / ||y||^2   (loss: minus it)
"""

from __future__ import annotations

from typing import Sequence

import torch

from neuraudio.stream import spectral
from neuraudio.stream.stft import stft

EPS = 1e-8


def pre_emphasis(x: torch.Tensor, coefficient: float = 0.85) -> torch.Tensor:
    """First-order high-pass ``x[n] - coefficient * x[n-1]`` (``x[-1] = 0``)."""
    return x - coefficient * torch.nn.functional.pad(x, (1, 0))[..., :-1]


def _masked_sum(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return (x if mask is None else x * mask).sum(-1)


def esr(estimate: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
        pre_emphasis_coefficient: float | None = 0.85, per_item: bool = False,
        floor_power: float = 1e-6) -> torch.Tensor:
    """Error-to-signal ratio (0 = perfect, 1 = as bad as silence), after optional pre-emphasis.

    Pooled over the batch by default (loud items dominate). ``per_item``: the mean of each item's own ESR, its
    target power floored at ``floor_power`` per sample (-60 dBFS RMS), so quiet items (a heavily compressed take)
    count as much as loud ones, as they do when a metric is reported per take.
    """
    if pre_emphasis_coefficient:
        estimate, target = pre_emphasis(estimate, pre_emphasis_coefficient), pre_emphasis(target, pre_emphasis_coefficient)
        if mask is not None:  # a filtered sample also needs its predecessor outside the ignored ranges
            mask = mask * torch.nn.functional.pad(mask, (1, 0), value=1.0)[..., :-1]
    if per_item:
        batch = target.shape[0]
        err = _masked_sum((target - estimate).pow(2), mask).reshape(batch, -1).sum(1)
        power = _masked_sum(target.pow(2), mask).reshape(batch, -1).sum(1)
        count = (torch.ones_like(target) if mask is None else mask.expand_as(target)).reshape(batch, -1).sum(1)
        return (err / (power + floor_power * count)).mean()
    err = _masked_sum((target - estimate).pow(2), mask).sum()
    return err / (_masked_sum(target.pow(2), mask).sum() + EPS)


def dc_loss(estimate: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Squared mean error relative to the target's mean power."""
    count = torch.tensor(float(target.shape[-1])) if mask is None else mask.sum(-1).clamp_min(1.0)
    mean_err = _masked_sum(target - estimate, mask) / count          # per item and channel
    power = (_masked_sum(target.pow(2), mask) / count).mean()
    return mean_err.pow(2).mean() / (power + EPS)


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    return stft(x, n_fft, hop).abs()


def mrstft(estimate: torch.Tensor, target: torch.Tensor,
           resolutions: Sequence[tuple[int, int]] = ((512, 128), (1024, 256), (2048, 512))) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1, summed over ``(n_fft, hop)`` pairs."""
    total = estimate.new_zeros(())
    for n_fft, hop in resolutions:
        s_hat, s = stft_magnitude(estimate, n_fft, hop), stft_magnitude(target, n_fft, hop)
        convergence = torch.linalg.vector_norm(s - s_hat, dim=(-2, -1)) / (torch.linalg.vector_norm(s, dim=(-2, -1)) + EPS)
        log_l1 = (torch.log(s.clamp_min(1e-5)) - torch.log(s_hat.clamp_min(1e-5))).abs().mean(dim=(-2, -1))
        total = total + (convergence + log_l1).mean()
    return total


def si_sdr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR in dB, mean over leading dims (higher is better)."""
    scale = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + EPS)
    projection = scale * target
    ratio = projection.pow(2).sum(-1) / ((projection - estimate).pow(2).sum(-1) + EPS)
    return (10 * torch.log10(ratio + EPS)).mean()


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
