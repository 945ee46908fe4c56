"""APNet-style vocoders: mel -> log amplitude + phase at the frame rate -> ISTFT (Ai & Ling, 2023), with a
classical phase estimate that the network refines.

Every layer runs at the frame rate (one vector per hop), so synthesis costs a ConvNeXt over frames plus FFTs. Two
heads read the backbone:

    log|S| = log(max(P+ exp(mel), eps)) + W_a h                  (P+: the mel filterbank's pseudo-inverse)
    re     = cos(phi_0) + W_r h,   im = sin(phi_0) + W_i h,   phase = atan2(im, re)

``phi_0`` is a DSP prior computed from the pseudo-inverse amplitude without gradients: fast Griffin-Lim started from
a phase-vocoder estimate (offline), or RTISI, real-time iterative spectrogram inversion without lookahead
(streaming); ``prior="none"`` is the plain APNet form (re, im from the network alone, phi_0 absent). The heads start
at zero, so an untrained prior model is its prior: training can only have to improve on it. The network sees the
log mel and ``cos, sin`` of the prior.

Two Processors share :class:`APNetCore`:

* :class:`APNet` (offline, ``apnet-16k``): centred frames, a non-causal backbone, run through
  :class:`~neuraudio.stream.chunked.ChunkedProcessor` (chunks with context on both sides).
* :class:`APNetStream` (``apnet-stream-16k``): causal frames and a causal backbone, frame by frame with caches
  (streaming equals offline by construction); latency ``n_fft - hop`` (24 ms at 16 kHz with n_fft 512, hop 128).

Both are audio -> mel -> audio as Processors and take mel frames from outside with ``synthesize(mel)``.

Example:
    >>> vocoder = neuraudio.load("apnet-16k")
    >>> audio = vocoder.synthesize(mel)                 # mel: (..., 80, frames), natural-log amplitude
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from neuraudio.nn.convnext import ConvNeXt, SpectralConv
from neuraudio.stream.chunked import ChunkedProcessor
from neuraudio.stream.mel import MelSpectrogram, mel_filterbank
from neuraudio.stream.stft import STFT, istft, reanalyse, stft
from neuraudio.stream.stft_processor import STFTProcessor
from neuraudio.vocoding.griffin_lim import mel_to_magnitude
from neuraudio.vocoding.phase_prior import (griffin_lim_from, init_prior_state, init_rtisi_state,
                                            phase_vocoder_prior, rtisi_normalisation, rtisi_prior)

EPS = 1e-5
PRIORS_OFFLINE = ("none", "phase-vocoder", "griffin-lim")
PRIORS_STREAMING = ("none", "phase-vocoder", "rtisi")


class APNetCore(nn.Module):
    """Log mel (+ prior phase) -> log amplitude and phase, ``(..., bins, frames)`` each.

    Args:
        n_mels, bins: mel bands in, frequency bins out (``n_fft // 2 + 1``).
        dim, layers, kernel: the ConvNeXt backbone (channels, blocks, depthwise kernel in frames).
        causal: causal convolutions (streaming) or centred ones.
        with_prior: the network sees a prior phase and its phase heads add to ``cos, sin`` of it.
        separate_branches: one backbone for amplitude and one for phase (as APNet) instead of a shared one.
        phase_refiner: ``"frame"``: the backbone's two linear heads (APNet's form); ``"spectral"``: a small 2-D
            convolution stack over (bins, frames), the same weights at every frequency, that reads the amplitude
            and the prior's phase, its differences along time and frequency, and rotates the prior by
            ``atan2(b, 1 + a)`` per bin (needs a prior).
        hop_ratio: ``hop / n_fft`` (the phase advance a bin's centre frequency makes per frame).
        refiner_channels, refiner_layers: the spectral refiner's width and depth.
        embed_kernel: frames the backbone's input layer spans (1 in the streaming model: a per-frame projection,
            about a fifth of a frame's compute otherwise; the blocks still see ``kernel`` frames each).
        refine_amplitude: a learned correction of the pseudo-inverse amplitude; ``False`` keeps the pseudo-inverse
            (the networks then only refine the phase).
    """

    def __init__(self, n_mels: int, bins: int, dim: int = 256, layers: int = 6, kernel: int = 7,
                 causal: bool = False, with_prior: bool = True, separate_branches: bool = False,
                 phase_refiner: str = "frame", hop_ratio: float = 0.25, refiner_channels: int = 16,
                 refiner_layers: int = 4, embed_kernel: int = 7, refine_amplitude: bool = True):
        super().__init__()
        if phase_refiner not in ("frame", "spectral") or (phase_refiner == "spectral" and not with_prior):
            raise ValueError(f"phase_refiner must be 'frame' or 'spectral' (which needs a prior), got {phase_refiner!r}.")
        self.with_prior, self.bins, self.phase_refiner = with_prior, bins, phase_refiner
        self.refiner = SpectralConv(7, 2, refiner_channels, refiner_layers, causal=causal) \
            if phase_refiner == "spectral" else None
        if self.refiner is not None:
            nn.init.zeros_(self.refiner.out.weight)
            nn.init.zeros_(self.refiner.out.bias)
        self.register_buffer("advance", 2 * math.pi * hop_ratio * torch.arange(bins, dtype=torch.float32),
                             persistent=False)
        features = n_mels + (2 * bins if with_prior else 0)
        # with the pseudo-inverse amplitude kept and the phase refined per bin, no head reads a frame backbone
        needs_backbone = refine_amplitude or phase_refiner == "frame"
        self.backbone = ConvNeXt(features, dim, layers, kernel, causal, embed_kernel=embed_kernel) \
            if needs_backbone else None
        self.phase_backbone = ConvNeXt(features, dim, layers, kernel, causal, embed_kernel=embed_kernel) \
            if separate_branches and phase_refiner == "frame" else None
        self.amplitude = nn.Linear(dim, bins) if refine_amplitude else None
        self.real = nn.Linear(dim, bins) if phase_refiner == "frame" else None
        self.imag = nn.Linear(dim, bins) if phase_refiner == "frame" else None
        heads = [h for h in ((self.amplitude, self.real, self.imag) if with_prior else (self.amplitude,)) if h is not None]
        for head in heads:  # start as the prior (amplitude: the pseudo-inverse)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def features(self, mel: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        scaled = (mel + 4.0) / 4.0  # log mel of speech spans about -11.5 (floor) .. 3
        if not self.with_prior:
            return scaled
        return torch.cat([scaled, torch.cos(prior), torch.sin(prior)], dim=-2)

    def refiner_input(self, log_amplitude: torch.Tensor, prior: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """``(batch, 7, bins, frames)``: scaled log amplitude; cos, sin of the prior phase, of its advance over the
        previous frame beyond the bin's centre frequency, and of its step from the bin below beyond the window's
        ``-pi`` per bin. ``previous``: the prior's frame before the first, ``(batch, bins, 1)``."""
        along_time = torch.diff(prior, dim=-1, prepend=previous) - self.advance[:, None]
        along_freq = torch.nn.functional.pad(torch.diff(prior, dim=-2) + math.pi, (0, 0, 1, 0))
        return torch.stack([(log_amplitude + 4.0) / 4.0, torch.cos(prior), torch.sin(prior), torch.cos(along_time),
                            torch.sin(along_time), torch.cos(along_freq), torch.sin(along_freq)], dim=1)

    def rotate(self, prior: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
        return prior + torch.atan2(correction[:, 1], 1.0 + correction[:, 0])

    def heads(self, h: torch.Tensor | None, hp: torch.Tensor | None, log_a0: torch.Tensor,
              prior: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if h is None:
            return log_a0, prior
        h, hp = h.transpose(-1, -2), hp.transpose(-1, -2)
        log_amplitude = log_a0 + self.amplitude(h).transpose(-1, -2) if self.amplitude is not None else log_a0
        if self.refiner is not None:
            return log_amplitude, prior  # the refiner rotates it (forward / step)
        re, im = self.real(hp).transpose(-1, -2), self.imag(hp).transpose(-1, -2)
        if prior is not None:
            re, im = re + torch.cos(prior), im + torch.sin(prior)
        return log_amplitude, torch.atan2(im, re)

    def forward(self, mel: torch.Tensor, log_a0: torch.Tensor, prior: torch.Tensor | None):
        lead = mel.shape[:-2]
        mel, log_a0 = mel.reshape(-1, *mel.shape[-2:]), log_a0.reshape(-1, *log_a0.shape[-2:])
        prior = None if prior is None else prior.reshape(-1, *prior.shape[-2:])
        h = hp = None
        if self.backbone is not None:
            x = self.features(mel, prior)
            h = self.backbone(x)
            hp = self.phase_backbone(x) if self.phase_backbone is not None else h
        log_amplitude, phase = self.heads(h, hp, log_a0, prior)
        if self.refiner is not None:
            first = prior.new_zeros(*prior.shape[:-1], 1)
            phase = self.rotate(prior, self.refiner(self.refiner_input(log_amplitude, prior, first)))
        return log_amplitude.reshape(*lead, *log_amplitude.shape[-2:]), phase.reshape(*lead, *phase.shape[-2:])

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> dict:
        cache = {"backbone": self.backbone.init_cache(batch, device, dtype) if self.backbone is not None else None}
        if self.phase_backbone is not None:
            cache["phase_backbone"] = self.phase_backbone.init_cache(batch, device, dtype)
        if self.refiner is not None:
            cache["refiner"] = self.refiner.init_cache(batch, self.bins, device, dtype)
            cache["previous"] = torch.zeros(batch, self.bins, 1, device=device, dtype=dtype)
        return cache

    def step(self, mel: torch.Tensor, log_a0: torch.Tensor, prior: torch.Tensor | None, cache: dict):
        """Causal: new frames ``(batch, ..., frames)`` with the caches of :meth:`init_cache` (updated in place)."""
        h = hp = None
        if self.backbone is not None:
            x = self.features(mel, prior)
            h = self.backbone.step(x, cache["backbone"])
            hp = self.phase_backbone.step(x, cache["phase_backbone"]) if self.phase_backbone is not None else h
        log_amplitude, phase = self.heads(h, hp, log_a0, prior)
        if self.refiner is not None and prior.shape[-1]:
            features = self.refiner_input(log_amplitude, prior, cache["previous"])
            cache["previous"].copy_(prior[..., -1:])  # in place, as every cache here
            phase = self.rotate(prior, self.refiner.step(features, cache["refiner"]))
        return log_amplitude, phase


def per_frame(fn, frames: torch.Tensor) -> torch.Tensor:
    """``fn`` applied to one frame ``(..., bins, 1)`` at a time: the same arithmetic whether frames come one by
    one (a stream) or all at once. Iterative phase retrieval amplifies the last-bit differences that a matrix
    product over many frames makes against one over a single frame into audible ones, so the streaming vocoder's
    mel and amplitude go through here."""
    if frames.shape[-1] <= 1:
        return fn(frames)
    return torch.cat([fn(frames[..., t : t + 1]) for t in range(frames.shape[-1])], dim=-1)


def _check_mel(mel: torch.Tensor, n_mels: int) -> None:
    if not torch.is_tensor(mel) or mel.ndim < 2 or not mel.is_floating_point():
        raise ValueError("mel must be a float tensor shaped (..., n_mels, frames) of natural-log amplitudes.")
    if mel.shape[-2] != n_mels:
        raise ValueError(f"mel has {mel.shape[-2]} bands but this vocoder uses {n_mels}.")


class APNet(ChunkedProcessor):
    """Offline amplitude/phase vocoder: centred frames, a non-causal ConvNeXt, a Griffin-Lim phase prior.

    Args:
        sample_rate, n_fft, hop, n_mels, fmin, fmax: the mel analysis (hann, centred frames, slaney, natural log of
            the amplitude, floor 1e-5): what ``synthesize`` expects from outside.
        dim, layers, kernel, separate_branches, phase_refiner, refiner_channels, refiner_layers, embed_kernel,
            refine_amplitude: the network (see :class:`APNetCore`).
        prior: ``"griffin-lim"`` (phase-vocoder start, then ``prior_iters`` fast Griffin-Lim iterations),
            ``"phase-vocoder"`` or ``"none"`` (plain APNet).
        context_frames, chunk_seconds: the chunked run (context on each side, in frames; audio per window).
    """

    task = "vocoder"

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop: int = 128, n_mels: int = 80,
                 fmin: float = 0.0, fmax: float | None = 8000.0, dim: int = 256, layers: int = 6, kernel: int = 7,
                 separate_branches: bool = False, prior: str = "griffin-lim", prior_iters: int = 32,
                 context_frames: int = 48, chunk_seconds: float = 4.0,
                 phase_refiner: str = "frame", refiner_channels: int = 16, refiner_layers: int = 4,
                 embed_kernel: int = 7, refine_amplitude: bool = True):
        if prior not in PRIORS_OFFLINE:
            raise ValueError(f"prior must be one of {', '.join(PRIORS_OFFLINE)}, got {prior!r}.")
        chunk = max(hop, round(chunk_seconds * sample_rate / hop) * hop)
        super().__init__(sample_rate, chunk, context_frames * hop)
        self.n_fft, self.frame_hop, self.prior, self.prior_iters = n_fft, hop, prior, int(prior_iters)
        self.mel = MelSpectrogram(sample_rate, n_fft, hop, n_mels, fmin, fmax, center=True, log=True, eps=EPS)
        self.n_mels = n_mels
        self.transform = STFT(n_fft, hop, center=True)
        self.register_buffer("inverse", torch.linalg.pinv(self.mel.filters.double()).float(), persistent=False)
        self.core = APNetCore(n_mels, n_fft // 2 + 1, dim, layers, kernel, causal=False,
                              with_prior=prior != "none", separate_branches=separate_branches,
                              phase_refiner=phase_refiner, hop_ratio=hop / n_fft, refiner_channels=refiner_channels,
                              refiner_layers=refiner_layers, embed_kernel=embed_kernel,
                              refine_amplitude=refine_amplitude)

    def prior_phase(self, magnitude: torch.Tensor, length: int | None) -> torch.Tensor | None:
        if self.prior == "none":
            return None
        with torch.no_grad():
            phase = phase_vocoder_prior(magnitude, self.n_fft, self.frame_hop)
            if self.prior == "griffin-lim" and self.prior_iters:
                phase = griffin_lim_from(magnitude, phase, self.transform, self.prior_iters, length=length)
        return phase

    def amplitude_phase(self, mel: torch.Tensor, length: int | None = None):
        """``(log_amplitude, phase)``, each ``(..., n_fft // 2 + 1, frames)``, for log mel ``(..., n_mels, frames)``."""
        magnitude = mel_to_magnitude(mel, self.inverse)
        prior = self.prior_phase(magnitude, length)
        return self.core(mel, torch.log(magnitude.clamp_min(EPS)), prior)

    def synthesize(self, mel: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Audio ``(..., length)`` (default ``(frames - 1) * hop``) from log-amplitude mel frames
        ``(..., n_mels, frames)`` in this model's mel settings (``model.mel``)."""
        _check_mel(mel, self.n_mels)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.training):
            log_amplitude, phase = self.amplitude_phase(mel, length)
            return self.transform.inverse(torch.polar(torch.exp(log_amplitude), phase), length=length)

    def analyse(self, audio: torch.Tensor) -> torch.Tensor:
        """Log mel ``(..., n_mels, frames)`` of ``audio`` (centred frames): the features ``synthesize`` expects."""
        return self.mel(audio)

    def process_window(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.synthesize(self.mel(x), length=x.shape[-1])

    def training_terms(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the training losses compare, for audio crops ``(batch, 1, time)``: predicted and true spectra
        (complex), log amplitude and phase, and the synthesized audio with its aligned target."""
        length = audio.shape[-1]
        target = self.transform(audio)
        mel = self.mel(audio)
        log_amplitude, phase = self.amplitude_phase(mel, length)
        spectrum = torch.polar(torch.exp(log_amplitude), phase)
        wave = self.transform.inverse(spectrum, length=length)
        return {"log_amplitude": log_amplitude, "phase": phase, "spectrum": spectrum, "target": target,
                "wave": wave, "audio": audio, "rebuilt": self.transform(wave)}


class APNetStream(STFTProcessor):
    """Streaming amplitude/phase vocoder: causal frames, a causal ConvNeXt with caches, an RTISI phase prior.

    Args:
        sample_rate, n_fft, hop, n_mels, fmin, fmax: the mel analysis on causal frames (hann; what
            ``MelSpectrogram(..., center=False)`` computes).
        dim, layers, kernel, separate_branches, phase_refiner, refiner_channels, refiner_layers, embed_kernel,
            refine_amplitude: the network (see :class:`APNetCore`).
        prior: ``"rtisi"`` (``prior_iters`` iterations per frame, no lookahead), ``"phase-vocoder"`` or ``"none"``.

    Latency: ``n_fft - hop`` samples fed whole hops (384 = 24 ms at the defaults); a stream of any block size adds
    ``hop - 1``.
    """

    task = "vocoder"

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop: int = 128, n_mels: int = 80,
                 fmin: float = 0.0, fmax: float | None = 8000.0, dim: int = 192, layers: int = 4, kernel: int = 7,
                 separate_branches: bool = False, prior: str = "rtisi", prior_iters: int = 4,
                 phase_refiner: str = "frame", refiner_channels: int = 16, refiner_layers: int = 4,
                 embed_kernel: int = 1, refine_amplitude: bool = True):
        if prior not in PRIORS_STREAMING:
            raise ValueError(f"prior must be one of {', '.join(PRIORS_STREAMING)}, got {prior!r}.")
        super().__init__(sample_rate, n_fft, hop, "hann")
        self.prior, self.prior_iters, self.n_mels = prior, int(prior_iters), n_mels
        self.register_buffer("filters", mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax), persistent=False)
        self.register_buffer("inverse", torch.linalg.pinv(self.filters.double()).float(), persistent=False)
        self.register_buffer("rtisi_norm", rtisi_normalisation(self.window, hop), persistent=False)
        self.core = APNetCore(n_mels, n_fft // 2 + 1, dim, layers, kernel, causal=True,
                              with_prior=prior != "none", separate_branches=separate_branches,
                              phase_refiner=phase_refiner, hop_ratio=hop / n_fft, refiner_channels=refiner_channels,
                              refiner_layers=refiner_layers, embed_kernel=embed_kernel,
                              refine_amplitude=refine_amplitude)

    def analyse(self, audio: torch.Tensor) -> torch.Tensor:
        """Log mel ``(..., n_mels, frames)`` of ``audio`` on causal frames (frame ``k`` ends at sample
        ``(k + 1) * hop - 1``): the features ``synthesize`` expects, computed as the Processor path computes them."""
        return self._mel(stft(audio, self.n_fft, self.hop, self.window))

    def _mel(self, spec: torch.Tensor) -> torch.Tensor:
        return per_frame(lambda s: torch.log(torch.matmul(self.filters, s.abs()).clamp_min(EPS)), spec)

    def init_frame_state(self, lead: tuple[int, ...], device) -> dict[str, Any]:
        batch = math.prod(lead)
        dtype = self.filters.dtype
        bins = self.n_fft // 2 + 1
        return {"rtisi": init_rtisi_state((batch,), self.n_fft, self.hop, device, dtype),
                "pv": init_prior_state((batch,), bins, device),
                "net": self.core.init_cache(batch, device, dtype)}

    def _prior(self, magnitude: torch.Tensor, state: dict) -> torch.Tensor | None:
        with torch.no_grad():
            if self.prior == "rtisi":
                return rtisi_prior(magnitude, self.window, self.hop, self.prior_iters, state=state["rtisi"],
                                   partial=self.rtisi_norm)
            if self.prior == "phase-vocoder":
                return phase_vocoder_prior(magnitude, self.n_fft, self.hop, state=state["pv"])
        return None

    def frames_from_mel(self, mel: torch.Tensor, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_amplitude, phase)`` of new frames ``(..., bins, n)`` from log mel ``(..., n_mels, n)``."""
        lead = mel.shape[:-2]
        mel = mel.reshape(-1, *mel.shape[-2:])
        magnitude = per_frame(lambda m: mel_to_magnitude(m, self.inverse), mel)
        prior = self._prior(magnitude, state)
        log_amplitude, phase = self.core.step(mel, torch.log(magnitude.clamp_min(EPS)), prior, state["net"])
        return log_amplitude.reshape(*lead, *log_amplitude.shape[-2:]), phase.reshape(*lead, *phase.shape[-2:])

    def process_frames(self, spec: torch.Tensor, state: Any, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mel = self._mel(spec)
        log_amplitude, phase = self.frames_from_mel(mel, state)
        return torch.polar(torch.exp(log_amplitude), phase)

    def synthesize(self, mel: torch.Tensor) -> torch.Tensor:
        """Audio from causal log mel frames ``(..., n_mels, frames)`` (``model.analyse(audio)``'s): ``frames * hop``
        samples, aligned with the audio the mel came from (frame ``k`` ends at sample ``(k + 1) * hop - 1``); the
        last ``n_fft - hop`` samples are still missing the frames that would follow, as in a stream."""
        _check_mel(mel, self.n_mels)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.training):
            state = self.init_frame_state(tuple(mel.shape[:-2]), mel.device)
            log_amplitude, phase = self.frames_from_mel(mel, state)
            y = istft(torch.polar(torch.exp(log_amplitude), phase), self.n_fft, self.hop, self.window)
            return nn.functional.pad(y[..., self.n_fft - self.hop:], (0, self.n_fft - self.hop))

    def training_terms(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """As :meth:`APNet.training_terms`, on causal frames (the audio target is delayed by the latency)."""
        target = stft(audio, self.n_fft, self.hop, self.window)
        mel = self._mel(target)
        state = self.init_frame_state(tuple(mel.shape[:-2]), mel.device)
        log_amplitude, phase = self.frames_from_mel(mel, state)
        spectrum = torch.polar(torch.exp(log_amplitude), phase)
        wave = istft(spectrum, self.n_fft, self.hop, self.window)
        delayed = nn.functional.pad(audio, (self.n_fft - self.hop, 0))[..., : wave.shape[-1]]
        return {"log_amplitude": log_amplitude, "phase": phase, "spectrum": spectrum, "target": target,
                "wave": wave, "audio": delayed, "rebuilt": reanalyse(wave, self.n_fft, self.hop, self.window)}
