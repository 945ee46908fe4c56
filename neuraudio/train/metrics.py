"""Evaluation metrics on ``(..., time)`` tensors, as plain floats (torch only; PESQ and STOI need ``[eval]``).

ESR and MR-STFT are the losses of :mod:`neuraudio.train.losses` evaluated without gradient; SDR is the plain
signal-to-distortion ratio of the music-demixing challenges, ``10 log10(||s||^2 / ||s - s^||^2)``; ERLE is the echo
return loss enhancement ``10 log10(E[mic^2] / E[out^2])`` over the samples where only the far end talks.
"""

from __future__ import annotations

import numpy as np
import torch

from neuraudio.train import losses

EPS = 1e-8


def esr(estimate, target, mask=None, pre_emphasis: float | None = 0.85) -> float:
    """Pre-emphasised ESR by default; ``pre_emphasis=None`` gives the plain ESR."""
    with torch.no_grad():
        return float(losses.esr(estimate, target, mask, pre_emphasis))


def mrstft_distance(estimate, target) -> float:
    with torch.no_grad():
        return float(losses.mrstft(estimate, target))


def sdr(estimate, target) -> float:
    num = target.pow(2).sum(-1)
    den = (target - estimate).pow(2).sum(-1)
    return float((10 * torch.log10((num + EPS) / (den + EPS))).mean())


def si_sdr(estimate, target) -> float:
    with torch.no_grad():
        return float(losses.si_sdr(estimate, target))


def erle(mic, output, far_end_only_mask=None) -> float:
    mic_power = losses._masked_sum(mic.pow(2), far_end_only_mask)
    out_power = losses._masked_sum(output.pow(2), far_end_only_mask)
    return float((10 * torch.log10((mic_power + EPS) / (out_power + EPS))).mean())


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"this metric needs the {module} package: pip install 'neuraudio[eval]'.") from None


def pesq(estimate, target, sample_rate: int) -> float:
    """Wide-band PESQ (16 kHz; 8 kHz uses narrow-band) of mono signals ``(time,)``/``(1, time)``."""
    if sample_rate not in (8000, 16000):
        raise ValueError(f"PESQ is defined at 8000 or 16000 Hz, not {sample_rate} Hz; resample first.")
    pesq_module = _need("pesq")
    mode = "wb" if sample_rate == 16000 else "nb"
    ref = target.detach().cpu().reshape(-1).numpy().astype(np.float64)
    deg = estimate.detach().cpu().reshape(-1).numpy().astype(np.float64)
    return float(pesq_module.pesq(sample_rate, ref, deg, mode))


def stoi(estimate, target, sample_rate: int, extended: bool = False) -> float:
    _need("pystoi")
    from pystoi import stoi as stoi_fn

    ref = target.detach().cpu().reshape(-1).numpy().astype(np.float64)
    deg = estimate.detach().cpu().reshape(-1).numpy().astype(np.float64)
    return float(stoi_fn(ref, deg, sample_rate, extended=extended))
