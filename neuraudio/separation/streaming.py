"""A streaming two-stem separator (vocals / accompaniment) on causal STFT frames, for real time.

Per frame (sqrt-hann, ``n_fft`` 2048, ``hop`` 512 at 44.1 kHz: 35 ms of algorithmic latency, ``n_fft - hop``):

- **features**: the log power of both channels' bins, ``log(|X|^2 + 1e-8)`` (2 x 1025 per frame);
- **backbone**: a causal ConvNeXt over frames (:mod:`neuraudio.nn.convnext`, a per-frame input projection,
  ``layers`` blocks of ``kernel`` frames), stepped one frame at a time with caches when streaming;
- **mask**: a sigmoid mask per channel and bin for the first stem; the first stem is the masked mixture and the
  second what remains, so the two always sum to the (delayed) mixture.

Streaming equals offline (the harness), the frames carry the backbone's caches, and a host handing whole hops gets
``n_fft - hop`` samples of latency (``block_multiple=hop``), any other block size ``hop - 1`` more.

Shape:
    ``process(x)``: ``(..., 2, time)`` -> ``(..., 2 stems, 2, time)``.

Example:
    >>> model = neuraudio.load("vocals-stream")
    >>> vocals, accompaniment = model.process(song)          # song: (2, time) at 44.1 kHz
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from neuraudio.nn.convnext import ConvNeXt
from neuraudio.stream.framing import StreamingISTFT, StreamingSTFT
from neuraudio.stream.stft import istft, stft
from neuraudio.stream.stft_processor import STFTProcessor, STFTStreamState


class StreamingSeparator(STFTProcessor):
    """Causal mask separator of two stems (module docstring).

    Args:
        sample_rate: Hz.
        stems: the two output names: the masked stem, then the rest.
        n_fft, hop: the STFT (sqrt-hann).
        dim, layers, kernel: the causal ConvNeXt.
    """

    task = "separation"
    in_channels = 2
    out_channels = 2

    def __init__(self, sample_rate: int = 44100, stems: Sequence[str] = ("vocals", "accompaniment"),
                 n_fft: int = 2048, hop: int = 512, dim: int = 256, layers: int = 6, kernel: int = 7):
        super().__init__(sample_rate, n_fft, hop, "sqrt-hann")
        if len(stems) != 2:
            raise ValueError(f"a streaming separator has two stems (the masked one and the rest), got {list(stems)}.")
        self.stems = tuple(stems)
        bins = n_fft // 2 + 1
        self.bins = bins
        self.backbone = ConvNeXt(self.in_channels * bins, dim, layers, kernel, causal=True, embed_kernel=1)
        self.head = nn.Linear(dim, self.in_channels * bins)

    @property
    def receptive_field_seconds(self) -> float:
        """The past one output frame depends on."""
        return self.backbone.receptive_field * self.hop / self.sample_rate

    def _features(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 2, bins, frames)`` complex -> ``(batch, 2 bins, frames)``."""
        power = spec.real.square() + spec.imag.square()
        return torch.log(power + 1e-8).flatten(1, 2)

    def _masked(self, spec: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Mixture frames and backbone output -> ``(batch, 2 stems, 2, bins, frames)``."""
        logits = self.head(h.transpose(1, 2)).transpose(1, 2)  # (batch, 2 bins, frames)
        first = spec * torch.sigmoid(logits).reshape(spec.shape)
        return torch.stack([first, spec - first], dim=1)

    def separate_frames(self, spec: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        """``(..., 2, bins, frames)`` -> ``(..., 2 stems, 2, bins, frames)``: all frames at once (``cache`` None) or
        the next frames of a stream."""
        lead = spec.shape[:-3]
        flat = spec.reshape(-1, *spec.shape[-3:])
        features = self._features(flat)
        h = self.backbone(features) if cache is None else self.backbone.step(features, cache)
        out = self._masked(flat, h)
        return out.reshape(*lead, *out.shape[1:])

    # ---- STFTProcessor -------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        spec = stft(x, self.n_fft, self.hop, self.window)
        return istft(self.separate_frames(spec), self.n_fft, self.hop, self.window)

    def init_state(self, channels: int, max_samples: int, device: torch.device) -> STFTStreamState:
        window = self.window.to(device)
        return STFTStreamState(
            StreamingSTFT(self.n_fft, self.hop, window, lead=(channels,), max_block=max_samples, device=device),
            StreamingISTFT(self.n_fft, self.hop, window, lead=(len(self.stems), channels), device=device),
            self.backbone.init_cache(1, device, window.dtype),
        )

    def step(self, x: torch.Tensor, state: STFTStreamState, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        spec = state.analysis.process(x)
        if spec.shape[-1] == 0:
            return state.synthesis.process(spec.new_zeros(len(self.stems), *spec.shape))
        return state.synthesis.process(self.separate_frames(spec, state.frames))

    def training_terms(self, mixture: torch.Tensor, stems: torch.Tensor) -> dict[str, Any]:
        """Crops ``mixture`` ``(batch, 2, time)`` and ``stems`` ``(batch, 2, 2, time)``: the estimate and the target,
        both resynthesised from causal frames, so aligned (delayed by ``n_fft - hop``)."""
        spec = stft(mixture, self.n_fft, self.hop, self.window)
        estimate = istft(self.separate_frames(spec), self.n_fft, self.hop, self.window)
        target = istft(stft(stems, self.n_fft, self.hop, self.window), self.n_fft, self.hop, self.window)
        return {"estimate": estimate, "target": target}

