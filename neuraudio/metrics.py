"""Quality metrics of audio signals shaped ``(..., time)`` (torch only; PESQ and STOI need the ``[eval]`` extra).

The torch metrics are differentiable and return 0-dim tensors, so the training losses (:mod:`neuraudio.train.losses`)
are these same functions; call ``float()`` on a result to report it. ``mask`` arguments (``(..., time)``, 1 = counts,
0 = ignored, e.g. a simulator's start-up transient) restrict a metric to part of the signal.

    ESR     = sum((H y - H y^)^2) / sum((H y)^2),   H = 1 - 0.85 z^-1 (pre-emphasis)    (Wright & Valimaki)
    MR-STFT = sum over resolutions of  ||S - S^||_F / ||S||_F  +  mean|log S - log S^|   (S: STFT magnitudes)
    SDR     = 10 log10(||y||^2 / ||y - y^||^2)     (the music-demixing challenges' plain SDR)
    SI-SDR  = 10 log10(||a y||^2 / ||a y - y^||^2),  a = <y^, y> / ||y||^2
    ERLE    = 10 log10(E[mic^2] / E[out^2])        (echo return loss enhancement, optionally where only the far end talks)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from neuraudio.stream.stft import stft

EPS = 1e-8


def pre_emphasis(x: torch.Tensor, coefficient: float = 0.85) -> torch.Tensor:
    """First-order high-pass ``x[n] - coefficient * x[n-1]`` (``x[-1] = 0``)."""
    return x - coefficient * torch.nn.functional.pad(x, (1, 0))[..., :-1]


def masked_sum(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Sum over time of ``x * mask`` (of ``x`` when ``mask`` is None)."""
    return (x if mask is None else x * mask).sum(-1)


def esr(estimate: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
        pre_emphasis_coefficient: float | None = 0.85, per_item: bool = False,
        floor_power: float = 1e-6) -> torch.Tensor:
    """Error-to-signal ratio (0 = perfect, 1 = as bad as silence), after optional pre-emphasis.

    Pooled over the batch by default (sums over all items, then the ratio: per-item ratios explode on crops whose
    target is nearly silent or mostly masked). ``per_item``: the mean of each item's own ESR, its target power
    floored at ``floor_power`` per sample (-60 dBFS RMS), so quiet items (a heavily compressed take) count as much
    as loud ones, as they do when a metric is reported per take.
    """
    if pre_emphasis_coefficient:
        estimate = pre_emphasis(estimate, pre_emphasis_coefficient)
        target = pre_emphasis(target, pre_emphasis_coefficient)
        if mask is not None:  # a filtered sample also needs its predecessor outside the ignored ranges
            mask = mask * torch.nn.functional.pad(mask, (1, 0), value=1.0)[..., :-1]
    if per_item:
        batch = target.shape[0]
        err = masked_sum((target - estimate).pow(2), mask).reshape(batch, -1).sum(1)
        power = masked_sum(target.pow(2), mask).reshape(batch, -1).sum(1)
        count = (torch.ones_like(target) if mask is None else mask.expand_as(target)).reshape(batch, -1).sum(1)
        return (err / (power + floor_power * count)).mean()
    err = masked_sum((target - estimate).pow(2), mask).sum()
    return err / (masked_sum(target.pow(2), mask).sum() + EPS)


def mrstft(estimate: torch.Tensor, target: torch.Tensor,
           resolutions: Sequence[tuple[int, int]] = ((512, 128), (1024, 256), (2048, 512))) -> torch.Tensor:
    """Multi-resolution STFT distance: spectral convergence + log-magnitude L1, summed over ``(n_fft, hop)`` pairs."""
    total = estimate.new_zeros(())
    for n_fft, hop in resolutions:
        s_hat, s = stft(estimate, n_fft, hop).abs(), stft(target, n_fft, hop).abs()
        convergence = (torch.linalg.vector_norm(s - s_hat, dim=(-2, -1))
                       / (torch.linalg.vector_norm(s, dim=(-2, -1)) + EPS))
        log_l1 = (torch.log(s.clamp_min(1e-5)) - torch.log(s_hat.clamp_min(1e-5))).abs().mean(dim=(-2, -1))
        total = total + (convergence + log_l1).mean()
    return total


def sdr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain SDR in dB, mean over leading dims (higher is better)."""
    num = target.pow(2).sum(-1)
    den = (target - estimate).pow(2).sum(-1)
    return (10 * torch.log10((num + EPS) / (den + EPS))).mean()


def si_sdr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR in dB, mean over leading dims (higher is better)."""
    scale = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + EPS)
    projection = scale * target
    ratio = projection.pow(2).sum(-1) / ((projection - estimate).pow(2).sum(-1) + EPS)
    return (10 * torch.log10(ratio + EPS)).mean()


def erle(mic: torch.Tensor, output: torch.Tensor, far_end_only_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Echo return loss enhancement in dB (higher is better), mean over leading dims."""
    mic_power = masked_sum(mic.pow(2), far_end_only_mask)
    out_power = masked_sum(output.pow(2), far_end_only_mask)
    return (10 * torch.log10((mic_power + EPS) / (out_power + EPS))).mean()


def near_end_gain(output: torch.Tensor, near: torch.Tensor) -> torch.Tensor:
    """The near end's own gain in an echo canceller's output, in dB: ``20 log10(<out, s> / <s, s>)``, the output
    projected on the near-end speech ``s`` (residual echo and noise do not count), mean over leading dims."""
    scale = (output * near).sum(-1) / near.pow(2).sum(-1).clamp_min(1e-20)
    return (20 * torch.log10(scale.clamp_min(1e-10))).mean()


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"this metric needs the {module} package: pip install 'neuraudio[eval]'.") from None


def pesq(estimate: torch.Tensor, target: torch.Tensor, sample_rate: int) -> float:
    """Wide-band PESQ (16 kHz; 8 kHz uses narrow-band) of mono signals ``(time,)``/``(1, time)``."""
    if sample_rate not in (8000, 16000):
        raise ValueError(f"PESQ is defined at 8000 or 16000 Hz, not {sample_rate} Hz; resample first.")
    pesq_module = _need("pesq")
    mode = "wb" if sample_rate == 16000 else "nb"
    ref = target.detach().cpu().reshape(-1).numpy().astype(np.float64)
    deg = estimate.detach().cpu().reshape(-1).numpy().astype(np.float64)
    return float(pesq_module.pesq(sample_rate, ref, deg, mode))


def stoi(estimate: torch.Tensor, target: torch.Tensor, sample_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility (0..1) of mono signals."""
    _need("pystoi")
    from pystoi import stoi as stoi_fn

    ref = target.detach().cpu().reshape(-1).numpy().astype(np.float64)
    deg = estimate.detach().cpu().reshape(-1).numpy().astype(np.float64)
    return float(stoi_fn(ref, deg, sample_rate, extended=extended))
