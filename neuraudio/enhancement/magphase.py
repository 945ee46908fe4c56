"""Speech enhancement with an explicit magnitude and an explicit phase (the MP-SENet family: Lu, Ai & Ling, 2023),
built for quality per CPU-hour: every layer runs at the frame rate, and a classical estimate is the starting point
the network refines.

Per frame, with ``X`` the noisy STFT and ``c = 0.3`` the magnitude compression:

    prior        G = log-MMSE gain with an MCRA noise tracker (``denoise-mmse``'s recursion, causal, 1.5 s memory)
    features     (log|X| + 5) / 4,  G,  cos / sin of the phase advance over the previous frame minus the bin's own
    backbone     ConvNeXt over frames (causal with caches for streaming, centred offline)
    magnitude    M = beta * sigmoid(h_m + logit(G^c / beta))       |Y|^c = M |X|^c      (beta = 1.5)
    phase        phi_Y = angle(X) + atan2(h_b + r_b, 1 + h_a + r_a)  (two parallel heads, read as re / im)
    refiner      (r_a, r_b): optional (``phase_channels`` > 0), a small 2-D convolution over bins x frames that
                 reads each bin's own phase relations (its advance along time and its step along frequency), the
                 heads' output, the noisy log magnitude and the mask
    mask refiner r_m added to h_m: optional (``mask_channels`` > 0), convolutions along frequency only (dilations
                 1, 2, 4; nothing to cache, so streaming too) over each bin's four features and its mask logit

The frame-level heads map one ``dim``-vector per frame to every bin's mask and rotation: a linear read-out, so the
mask follows a bin's own evidence only through the prior ``G``. ``benchmarks/enhancement.py gains`` showed the
trained denoisers letting through about twice the ideal mask's noise where noise dominates; the mask refiner is the
per-bin path for that. The rotation heads see no bin's phase, and trained that way they learned no rotation at all
(``benchmarks/enhancement.py phase``: 0.004 rad on average after 3.2 CPU-hours). The refiner is the per-bin path
MP-SENet's phase decoder has, kept small. The heads and the refiner's last layer start at zero, so an untrained
model is the classical denoiser (with the noisy phase): training can only have to improve on it. The prior gives the
network what a short receptive field cannot see, a noise floor tracked over seconds.

* :class:`MagPhaseDenoiser`: offline, centred frames, a non-causal backbone, run in chunks with context
  (``ChunkedProcessor``), so a long file has bounded memory.
* :class:`MagPhaseDenoiserStream`: causal frames (``STFTProcessor``), a causal backbone stepped frame by frame; its
  latency is ``n_fft - hop`` (160 samples, 10 ms, at the defaults).

``training_terms(noisy, clean)`` returns what the losses of :class:`neuraudio.train.enhance.EnhancementModule`
compare. Shapes: audio ``(..., channels, time)``; spectra ``(..., bins, frames)``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from neuraudio.enhancement.mmse import init_mmse_state, mmse_gains
from neuraudio.nn.convnext import ConvNeXt
from neuraudio.stream.chunked import ChunkedProcessor
from neuraudio.stream.stft import STFT, istft, reanalyse, stft
from neuraudio.stream.stft_processor import STFTProcessor

POWER = 0.3
BETA = 1.5


def mmse_prior(spec: torch.Tensor, state: dict | None, window_frames: int, floor_db: float = 25.0) -> torch.Tensor:
    """Log-MMSE gains ``(batch, bins, frames)`` (float32, in ``[10^(-floor_db/20), 1]``) of noisy frames, without
    gradients, by ``denoise-mmse``'s recursion (:func:`neuraudio.enhancement.mmse.mmse_gains`); ``state`` (``None``:
    a fresh tracker) is updated in place, frame by frame."""
    if state is None:
        state = init_mmse_state((spec.shape[0],), spec.shape[-2], spec.device)
    with torch.no_grad():
        return mmse_gains(spec.abs().double().pow(2), state, 10 ** (-floor_db / 20), window_frames).float()


class MagPhaseCore(nn.Module):
    """Features of noisy frames -> magnitude mask and phase rotation (module docstring).

    Args:
        bins: ``n_fft // 2 + 1``.
        hop_ratio: ``hop / n_fft`` (each bin's own phase advance per frame is ``2 pi k hop_ratio``).
        dim, layers, kernel, embed_kernel: the ConvNeXt backbone.
        causal: streaming form.
    """

    def __init__(self, bins: int, hop_ratio: float, dim: int = 192, layers: int = 6, kernel: int = 7,
                 causal: bool = False, embed_kernel: int = 1, phase_channels: int = 0, phase_layers: int = 3,
                 mask_channels: int = 0):
        super().__init__()
        self.bins = bins
        self.mask_refiner = None
        if mask_channels:
            self.mask_refiner = nn.Sequential(
                nn.Conv1d(5, mask_channels, 3, padding=1), nn.ELU(),
                nn.Conv1d(mask_channels, mask_channels, 3, padding=2, dilation=2), nn.ELU(),
                nn.Conv1d(mask_channels, mask_channels, 3, padding=4, dilation=4), nn.ELU(),
                nn.Conv1d(mask_channels, 1, 1))
            nn.init.zeros_(self.mask_refiner[-1].weight)  # starts as no change
            nn.init.zeros_(self.mask_refiner[-1].bias)
        self.refiner = None
        if phase_channels:
            if causal:
                raise ValueError("the per-bin phase refiner is offline only (phase_channels must be 0 when causal).")
            convs, width = [], 8
            for _ in range(phase_layers - 1):
                convs += [nn.Conv2d(width, phase_channels, 3, padding=1), nn.SiLU()]
                width = phase_channels
            convs.append(nn.Conv2d(width, 2, 3, padding=1))
            nn.init.zeros_(convs[-1].weight)
            nn.init.zeros_(convs[-1].bias)
            self.refiner = nn.Sequential(*convs)
        self.backbone = ConvNeXt(4 * bins, dim, layers, kernel, causal=causal, embed_kernel=embed_kernel)
        self.mask = nn.Linear(dim, bins)
        self.real = nn.Linear(dim, bins)
        self.imag = nn.Linear(dim, bins)
        for head in (self.mask, self.real, self.imag):  # start as the classical denoiser
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        advance = 2 * math.pi * hop_ratio * torch.arange(bins, dtype=torch.float32)
        self.register_buffer("advance", advance, persistent=False)

    def features(self, magnitude: torch.Tensor, phase: torch.Tensor, gain: torch.Tensor,
                 previous: torch.Tensor) -> torch.Tensor:
        """``(batch, 4 bins, frames)`` from the noisy magnitude and phase; ``previous``: the phase of the frame before
        the first, ``(batch, bins, 1)``."""
        along_time = torch.diff(phase, dim=-1, prepend=previous) - self.advance[:, None]
        log_magnitude = (torch.log(magnitude.clamp_min(1e-5)) + 5.0) / 4.0
        return torch.cat([log_magnitude, gain, torch.cos(along_time), torch.sin(along_time)], dim=-2)

    def apply(self, h: torch.Tensor, magnitude: torch.Tensor, phase: torch.Tensor, gain: torch.Tensor,
              features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone output ``(batch, dim, frames)`` -> enhanced spectrum and the compressed-magnitude mask."""
        h = h.transpose(-1, -2)
        start = (gain.clamp_min(1e-4) ** POWER / BETA).clamp(1e-4, 1 - 1e-4)
        logits = self.mask(h).transpose(-1, -2) + torch.logit(start)
        if self.mask_refiner is not None:
            logits = logits + self._refine_mask(logits, features)
        mask = BETA * torch.sigmoid(logits)
        a, b = self.real(h).transpose(-1, -2), self.imag(h).transpose(-1, -2)
        if self.refiner is not None:
            refined = self.refiner(self._phase_features(a, b, features, phase, mask))
            a, b = a + refined[:, 0], b + refined[:, 1]
        rotation = torch.atan2(b, 1.0 + a)
        enhanced = (mask * magnitude.clamp_min(1e-8) ** POWER) ** (1.0 / POWER)
        return torch.polar(enhanced, phase + rotation), mask

    def _refine_mask(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The mask refiner's correction ``(batch, bins, frames)``: each frame's bins as one sequence (frames folded
        into the batch), read along frequency only."""
        batch, bins, frames = logits.shape
        x = torch.cat([features.unflatten(-2, (4, bins)), logits[:, None]], dim=1)  # (batch, 5, bins, frames)
        x = x.permute(0, 3, 1, 2).reshape(batch * frames, 5, bins)
        return self.mask_refiner(x).reshape(batch, frames, bins).transpose(-1, -2)

    def _phase_features(self, a: torch.Tensor, b: torch.Tensor, features: torch.Tensor, phase: torch.Tensor,
                        mask: torch.Tensor) -> torch.Tensor:
        """The refiner's input ``(batch, 8, bins, frames)``: the heads' output, cos / sin of each bin's phase advance
        over the previous frame (less its own; read from the backbone's ``features``) and of its step from the bin
        below, the noisy log magnitude (also from ``features``), the mask."""
        log_magnitude, _, cos_time, sin_time = features.unflatten(-2, (4, self.bins)).unbind(-3)
        along_freq = torch.diff(phase, dim=-2, prepend=phase[..., :1, :])
        return torch.stack([a, b, cos_time, sin_time, torch.cos(along_freq), torch.sin(along_freq), log_magnitude,
                            mask], dim=1)

    def forward(self, spec: torch.Tensor, gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        magnitude, phase = spec.abs(), spec.angle()
        previous = phase[..., :1] - self.advance[:, None]  # no frame before the first: its advance reads as the bin's own
        features = self.features(magnitude, phase, gain, previous)
        return self.apply(self.backbone(features), magnitude, phase, gain, features)

    def step(self, spec: torch.Tensor, gain: torch.Tensor, cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
        magnitude, phase = spec.abs(), spec.angle()
        if not cache["started"]:
            cache["previous"].copy_(phase[..., :1] - self.advance[:, None])
            cache["started"] = True
        features = self.features(magnitude, phase, gain, cache["previous"])
        cache["previous"].copy_(phase[..., -1:])
        return self.apply(self.backbone.step(features, cache["net"]), magnitude, phase, gain, features)

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> dict:
        return {"started": False, "previous": torch.zeros(batch, self.bins, 1, device=device, dtype=dtype),
                "net": self.backbone.init_cache(batch, device, dtype)}


def _flat(spec: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    return spec.reshape(-1, *spec.shape[-2:]), tuple(spec.shape[:-2])


class CoreDenoiser(ChunkedProcessor):
    """Offline denoiser shell around a ``core`` set by the subclass (``core(spec, gain)`` -> enhanced spectrum and
    mask): centred STFT frames, the log-MMSE prior, a chunked run with context (so a long file has bounded memory),
    and the terms the losses compare. ``chunk_seconds``, ``context_seconds``: audio per window and context on each
    side (which also warms the noise tracker up); ``minimum_seconds``: the noise tracker's minimum-search span."""

    task = "enhancement"

    def __init__(self, sample_rate: int, n_fft: int, hop: int, chunk_seconds: float, context_seconds: float,
                 minimum_seconds: float):
        chunk = max(hop, round(chunk_seconds * sample_rate / hop) * hop)
        context = round(context_seconds * sample_rate / hop) * hop
        super().__init__(sample_rate, chunk, context)
        self.n_fft, self.frame_hop = int(n_fft), int(hop)
        self.transform = STFT(n_fft, hop, center=True)
        self.window_frames = max(2, round(minimum_seconds * sample_rate / hop / 2))

    def enhance_spectrum(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy STFT ``(..., bins, frames)`` -> enhanced STFT and the mask."""
        flat, lead = _flat(spec)
        out, mask = self.core(flat, mmse_prior(flat, None, self.window_frames))
        return out.reshape(*lead, *out.shape[-2:]), mask.reshape(*lead, *mask.shape[-2:])

    def process_window(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.transform.inverse(self.enhance_spectrum(self.transform(x))[0], length=x.shape[-1])

    def training_terms(self, noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """Estimated and clean spectra, the mask, the estimate's waveform and the aligned clean waveform."""
        spec = self.transform(noisy)
        estimate, mask = self.enhance_spectrum(spec)
        wave = self.transform.inverse(estimate, length=noisy.shape[-1])
        return {"spectrum": estimate, "target": self.transform(clean), "mask": mask, "wave": wave, "clean": clean,
                "rebuilt": self.transform(wave)}


class CoreDenoiserStream(STFTProcessor):
    """Streaming denoiser shell around a causal ``core`` set by the subclass (``core(spec, gain)`` over a whole crop,
    ``core.step(spec, gain, cache)`` continuing a stream, ``core.init_cache(batch, device, dtype)``): causal frames,
    the log-MMSE prior and the core's cache carried from block to block, and the terms the losses compare."""

    task = "enhancement"

    def __init__(self, sample_rate: int, n_fft: int, hop: int, window: str, minimum_seconds: float):
        super().__init__(sample_rate, n_fft, hop, window)
        self.window_frames = max(2, round(minimum_seconds * sample_rate / hop / 2))

    def init_frame_state(self, lead: tuple[int, ...], device) -> dict[str, Any]:
        batch = math.prod(lead)
        return {"mmse": init_mmse_state((batch,), self.n_fft // 2 + 1, device),
                "net": self.core.init_cache(batch, device, self.window.dtype)}

    def enhance_frames(self, spec: torch.Tensor, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
        flat, lead = _flat(spec)
        out, mask = self.core.step(flat, mmse_prior(flat, state["mmse"], self.window_frames), state["net"])
        return out.reshape(*lead, *out.shape[-2:]), mask.reshape(*lead, *mask.shape[-2:])

    def process_frames(self, spec: torch.Tensor, state: Any, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.enhance_frames(spec, state)[0]

    def training_terms(self, noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """As :meth:`CoreDenoiser.training_terms`, on causal frames; the waveforms are both resynthesized from
        frames, so they are aligned (both delayed by ``n_fft - hop``)."""
        spec = stft(noisy, self.n_fft, self.hop, self.window)
        flat, lead = _flat(spec)
        # the whole crop at once: what stepping frame by frame gives
        estimate, mask = self.core(flat, mmse_prior(flat, None, self.window_frames))
        estimate, mask = estimate.reshape(*lead, *estimate.shape[-2:]), mask.reshape(*lead, *mask.shape[-2:])
        target = stft(clean, self.n_fft, self.hop, self.window)
        wave = istft(estimate, self.n_fft, self.hop, self.window)
        return {"spectrum": estimate, "target": target, "mask": mask, "wave": wave,
                "clean": istft(target, self.n_fft, self.hop, self.window),
                "rebuilt": reanalyse(wave, self.n_fft, self.hop, self.window)}


class MagPhaseDenoiser(CoreDenoiser):
    """Offline magnitude + phase denoiser: centred STFT frames, a non-causal ConvNeXt, the log-MMSE prior.

    Args:
        sample_rate: Hz (16 kHz models).
        n_fft, hop: the STFT (hann, centred frames).
        dim, layers, kernel, embed_kernel: the backbone (see :class:`MagPhaseCore`).
        phase_channels, phase_layers: the per-bin phase refiner (0 channels: none, the frame-level heads alone).
        mask_channels: width of the per-bin mask refiner (0: none).
        chunk_seconds, context_seconds: the chunked run (audio per window; context on each side, which also warms
            the noise tracker up).
        minimum_seconds: the noise tracker's minimum-search span.
    """

    task = "enhancement"

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop: int = 128, dim: int = 192, layers: int = 6,
                 kernel: int = 7, embed_kernel: int = 1, chunk_seconds: float = 8.0, context_seconds: float = 1.0,
                 minimum_seconds: float = 1.5, phase_channels: int = 0, phase_layers: int = 3,
                 mask_channels: int = 0):
        super().__init__(sample_rate, n_fft, hop, chunk_seconds, context_seconds, minimum_seconds)
        self.core = MagPhaseCore(n_fft // 2 + 1, hop / n_fft, dim, layers, kernel, causal=False,
                                 embed_kernel=embed_kernel, phase_channels=phase_channels, phase_layers=phase_layers,
                                 mask_channels=mask_channels)

    def load_narrower(self, state: Mapping[str, torch.Tensor]) -> None:
        """Start from a model folder without the phase refiner or the mask refiner (each starts as no change: the
        same function); every other weight must match."""
        _load_without(self, state, "core.refiner.", "core.mask_refiner.")


class MagPhaseDenoiserStream(CoreDenoiserStream):
    """Streaming magnitude + phase denoiser: causal frames, a causal ConvNeXt stepped with caches, the log-MMSE prior
    carried from block to block.

    Args:
        sample_rate, n_fft, hop: the STFT (``window``, default sqrt-hann, on analysis and synthesis).
        dim, layers, kernel, embed_kernel: the backbone.
        minimum_seconds: the noise tracker's minimum-search span.
        mask_channels: width of the per-bin mask refiner (0: none; :class:`MagPhaseCore`).

    Latency: ``n_fft - hop`` fed whole hops (160 samples = 10 ms at the defaults). A folder without the mask refiner
    starts a model with one as the same function (:meth:`load_narrower`).
    """

    task = "enhancement"

    def __init__(self, sample_rate: int = 16000, n_fft: int = 320, hop: int = 160, dim: int = 192, layers: int = 6,
                 kernel: int = 7, embed_kernel: int = 1, minimum_seconds: float = 1.5, window: str = "sqrt-hann",
                 mask_channels: int = 0):
        super().__init__(sample_rate, n_fft, hop, window, minimum_seconds)
        self.core = MagPhaseCore(n_fft // 2 + 1, hop / n_fft, dim, layers, kernel, causal=True,
                                 embed_kernel=embed_kernel, mask_channels=mask_channels)

    def load_narrower(self, state: Mapping[str, torch.Tensor]) -> None:
        """Start from a model folder without the mask refiner (it starts as no change: the same function); every
        other weight must match."""
        _load_without(self, state, "core.mask_refiner.")


def _load_without(model: nn.Module, state: Mapping[str, torch.Tensor], *added: str) -> None:
    """Load ``state`` into ``model`` where only the parts under the ``added`` prefixes may be missing (they keep
    their initial values: the refiners' zero last layers make them no change)."""
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise ValueError(f"the folder does not match this model: {len(wrong)} weights differ in shape "
                         f"(first {wrong[0]}).")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(added) for k in missing):
        raise ValueError(f"the folder does not match this model: missing {missing}, unexpected {unexpected}.")
