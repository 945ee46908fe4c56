"""Mel filterbank and mel spectrogram in torch, equal to librosa's (Slaney's mel scale and area normalisation by
default, HTK's scale on request); librosa itself stays out of the core import.

    hz -> mel (Slaney): f / (200 / 3) below 1 kHz, 15 + 27 * ln(f / 1000) / ln(6.4) above
    filter i: triangle from mel point i to i + 2, peak 1 at i + 1 (then ``norm="slaney"``: scaled by
    2 / (f[i + 2] - f[i]), equal area)

Example:
    >>> mel = MelSpectrogram(22050, n_fft=1024, hop=256, n_mels=80)
    >>> features = mel(audio)                        # (..., 80, frames): log amplitude
"""

from __future__ import annotations

import math

import torch

from neuraudio.stream.stft import STFT

_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: torch.Tensor, htk: bool = False) -> torch.Tensor:
    hz = torch.as_tensor(hz, dtype=torch.float64)
    if htk:
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    return torch.where(hz >= _MIN_LOG_HZ, _MIN_LOG_MEL + torch.log(hz.clamp_min(1e-10) / _MIN_LOG_HZ) / _LOGSTEP,
                       hz / _F_SP)


def mel_to_hz(mel: torch.Tensor, htk: bool = False) -> torch.Tensor:
    mel = torch.as_tensor(mel, dtype=torch.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    return torch.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 80, fmin: float = 0.0, fmax: float | None = None,
                   htk: bool = False, norm: str | None = "slaney") -> torch.Tensor:
    """``(n_mels, n_fft // 2 + 1)`` float32 triangular filters, as ``librosa.filters.mel`` builds them."""
    fmax = sample_rate / 2 if fmax is None else float(fmax)
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin}, fmax={fmax}.")
    if n_mels < 1 or n_fft < 2:
        raise ValueError(f"need n_mels >= 1 and n_fft >= 2, got {n_mels} and {n_fft}.")
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}.")
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    points = mel_to_hz(torch.linspace(float(hz_to_mel(fmin, htk)), float(hz_to_mel(fmax, htk)), n_mels + 2,
                                      dtype=torch.float64), htk)
    widths = points.diff()
    ramps = points[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    if norm == "slaney":
        weights = weights * (2.0 / (points[2:] - points[:-2]))[:, None]
    return weights.to(torch.float32)


class MelSpectrogram(torch.nn.Module):
    """Mel spectrogram of ``(..., time)`` audio: ``(..., n_mels, frames)``, the natural log of the amplitude (or
    power) in each band by default.

    Args:
        sample_rate, n_fft, hop: Hz, samples, samples (hann window of ``n_fft``).
        n_mels, fmin, fmax, htk, norm: as :func:`mel_filterbank`.
        power: 1 (amplitude) or 2 (power) before the filterbank.
        center: centred frames with reflect padding (the usual vocoder setting), or causal frames.
        log: natural log after ``clamp_min(eps)``; ``False`` keeps the linear bands.
    """

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 80, fmin: float = 0.0,
                 fmax: float | None = None, htk: bool = False, norm: str | None = "slaney", power: float = 1.0,
                 center: bool = True, log: bool = True, eps: float = 1e-5):
        super().__init__()
        self.sample_rate, self.n_mels, self.power, self.log, self.eps = sample_rate, n_mels, power, log, eps
        self.stft = STFT(n_fft, hop, center=center)
        self.register_buffer("filters", mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm),
                             persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        magnitude = self.stft(audio).abs()
        if self.power != 1.0:
            magnitude = magnitude ** self.power
        bands = torch.matmul(self.filters, magnitude)
        return torch.log(bands.clamp_min(self.eps)) if self.log else bands
