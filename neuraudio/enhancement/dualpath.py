"""Speech enhancement with a per-bin path: a dual-path network over sub-bands (the DPCRN / GTCRN class) that
estimates a magnitude mask and a phase rotation for every STFT bin, on top of the classical log-MMSE prior.

:mod:`neuraudio.enhancement.magphase` reads every bin's mask and rotation out of one vector per frame (a linear
read-out of ``dim`` values into all bins); session 14 placed its gap there (the ideal mask on the same frames scores
3.20 WB-PESQ where it scores 1.98, and neither more suppression nor more training moves it). Here each bin keeps its
own features from input to output:

    features   per bin (6): (log|X| + 5) / 4, the prior gain G, cos / sin of the phase advance over the previous
               frame less the bin's own, cos / sin of the phase step from the bin below
    encoder    bins grouped into sub-bands of ``band`` (4: 161 bins -> 41 bands at n_fft 320), one linear layer from a
               band's features to ``channels``, plus a learned embedding of the band's place
    blocks     dual-path: self-attention across the sub-bands of each frame (2 heads: the spectral shape,
               harmonics; a bidirectional GRU there made the frame step slower on a CPU), then a GRU along time for
               each sub-band (causal with its state carried for streaming; bidirectional offline), each with a
               linear layer, layer norm and a residual
    decoder    a linear layer from each band to ``bin_channels`` per bin, added to a linear map of the bin's own
               features, a PReLU and a linear layer to the bin's three outputs
    output     per bin h_m, a, b:  mask M = beta sigmoid(h_m + logit(G^c / beta)),  |Y|^c = M |X|^c (c = 0.3),
               phase angle(X) + atan2(b, 1 + a); the last layer starts at zero, so an untrained model is the
               classical denoiser with the noisy phase

Nothing but the time GRUs looks across frames, so a block of frames and the same frames one at a time give the same
numbers, and a stream carries only the GRU states, the noise tracker and the previous frame's phase.

* :class:`DualPathDenoiserStream`: causal frames (``STFTProcessor``, sqrt-hann, latency ``n_fft - hop``).
* :class:`DualPathDenoiser`: offline, centred frames, bidirectional time GRUs, run in chunks with context
  (``ChunkedProcessor``).

Shapes: audio ``(..., channels, time)``; spectra ``(..., bins, frames)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neuraudio.enhancement.magphase import BETA, POWER, CoreDenoiser, CoreDenoiserStream

FEATURES = 6


class DualPathBlock(nn.Module):
    """One dual-path block on ``(batch, frames, bands, channels)``: self-attention across the bands of each frame,
    then a GRU along time for each band, each followed by a linear layer, layer norm and a residual. ``state``
    (``(1, batch * bands, channels)``, causal only) is the time GRU's."""

    def __init__(self, channels: int, causal: bool, heads: int = 2):
        super().__init__()
        if channels % (2 * heads):
            raise ValueError(f"channels must be a multiple of {2 * heads} (twice the attention heads), got {channels}.")
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.intra_fc = nn.Linear(channels, channels)
        self.intra_norm = nn.LayerNorm(channels)
        hidden = channels if causal else channels // 2
        self.inter = nn.GRU(channels, hidden, batch_first=True, bidirectional=not causal)
        self.inter_fc = nn.Linear(channels, channels)
        self.inter_norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames, bands, channels = x.shape
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(-2, -3)
                   for t in self.qkv(x.reshape(batch * frames, bands, channels)).chunk(3, dim=-1))
        y = nn.functional.scaled_dot_product_attention(q, k, v).transpose(-2, -3).flatten(-2)
        x = x + self.intra_norm(self.intra_fc(y)).reshape(batch, frames, bands, channels)
        z = x.transpose(1, 2).reshape(batch * bands, frames, channels)
        z, state = self.inter(z, state)
        z = self.inter_norm(self.inter_fc(z)).reshape(batch, bands, frames, channels).transpose(1, 2)
        return x + z, state


class DualPathCore(nn.Module):
    """Per-bin features of noisy frames -> magnitude mask and phase rotation for every bin (module docstring).

    Args:
        bins: ``n_fft // 2 + 1``.
        hop_ratio: ``hop / n_fft`` (a bin's own phase advance per frame is ``2 pi k hop_ratio``).
        channels: width of the sub-band path (even).
        band: bins per sub-band.
        bin_channels: width of the per-bin output layer.
        blocks: dual-path blocks.
        causal: streaming form (time GRUs run forward only and carry their state).
    """

    def __init__(self, bins: int, hop_ratio: float, channels: int = 32, band: int = 4, bin_channels: int = 16,
                 blocks: int = 2, causal: bool = True):
        super().__init__()
        self.bins, self.band, self.causal = bins, band, causal
        self.bands = -(-bins // band)
        self.encode = nn.Linear(FEATURES * band, channels)
        self.position = nn.Parameter(torch.zeros(self.bands, channels))
        self.encode_norm = nn.LayerNorm(channels)
        self.blocks = nn.ModuleList(DualPathBlock(channels, causal) for _ in range(blocks))
        self.decode = nn.Linear(channels, band * bin_channels)
        self.own = nn.Linear(FEATURES, bin_channels)
        self.act = nn.PReLU()
        self.out = nn.Linear(bin_channels, 3)
        nn.init.zeros_(self.out.weight)  # starts as the classical denoiser
        nn.init.zeros_(self.out.bias)
        advance = 2 * math.pi * hop_ratio * torch.arange(bins, dtype=torch.float32)
        self.register_buffer("advance", advance, persistent=False)

    def features(self, magnitude: torch.Tensor, phase: torch.Tensor, gain: torch.Tensor,
                 previous: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, bins, 6)``; ``previous``: the phase of the frame before the first, ``(batch, bins, 1)``."""
        along_time = torch.diff(phase, dim=-1, prepend=previous) - self.advance[:, None]
        along_freq = torch.diff(phase, dim=-2, prepend=phase[..., :1, :])
        log_magnitude = (torch.log(magnitude.clamp_min(1e-5)) + 5.0) / 4.0
        x = torch.stack([log_magnitude, gain, torch.cos(along_time), torch.sin(along_time), torch.cos(along_freq),
                         torch.sin(along_freq)], dim=-1)  # (batch, bins, frames, 6)
        return x.transpose(1, 2)

    def network(self, x: torch.Tensor, states: list[torch.Tensor | None]) -> tuple[torch.Tensor, list]:
        """``(batch, frames, bins, 6)`` -> ``(batch, 3, bins, frames)`` (h_m, a, b) and the time GRUs' states."""
        batch, frames = x.shape[:2]
        padded = nn.functional.pad(x, (0, 0, 0, self.bands * self.band - self.bins))
        h = self.encode(padded.reshape(batch, frames, self.bands, self.band * FEATURES))
        h = self.encode_norm(h + self.position)
        new_states = []
        for block, state in zip(self.blocks, states):
            h, state = block(h, state)
            new_states.append(state)
        per_bin = self.decode(h).reshape(batch, frames, self.bands * self.band, -1)[:, :, : self.bins]
        out = self.out(self.act(per_bin + self.own(x)))  # (batch, frames, bins, 3)
        return out.permute(0, 3, 2, 1), new_states

    def forward(self, spec: torch.Tensor, gain: torch.Tensor,
                cache: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy frames ``(batch, bins, frames)`` and prior gains -> enhanced frames and the compressed-magnitude
        mask. With ``cache`` (causal only; :meth:`init_cache`) the frames continue a stream."""
        magnitude, phase = spec.abs(), spec.angle()
        if cache is None:
            previous, states = phase[..., :1] - self.advance[:, None], [None] * len(self.blocks)
        else:
            if not self.causal:
                raise ValueError("only the causal form can be stepped with a cache.")
            if not cache["started"]:
                cache["previous"].copy_(phase[..., :1] - self.advance[:, None])
                cache["started"] = True
            previous, states = cache["previous"], cache["states"]
        heads, states = self.network(self.features(magnitude, phase, gain, previous), states)
        if cache is not None:  # the features are read: the cache moves on
            cache["previous"].copy_(phase[..., -1:])
            cache["states"] = states
        start = (gain.clamp_min(1e-4) ** POWER / BETA).clamp(1e-4, 1 - 1e-4)
        mask = BETA * torch.sigmoid(heads[:, 0] + torch.logit(start))
        rotation = torch.atan2(heads[:, 2], 1.0 + heads[:, 1])
        enhanced = (mask * magnitude.clamp_min(1e-8) ** POWER) ** (1.0 / POWER)
        return torch.polar(enhanced, phase + rotation), mask

    def step(self, spec: torch.Tensor, gain: torch.Tensor, cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The frames of one block of a stream (:meth:`forward` with its cache)."""
        return self(spec, gain, cache)

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> dict:
        return {"started": False, "previous": torch.zeros(batch, self.bins, 1, device=device, dtype=dtype),
                "states": [None] * len(self.blocks)}


class DualPathDenoiserStream(CoreDenoiserStream):
    """Streaming denoiser with a per-bin dual-path network: causal frames, the log-MMSE prior and the time GRUs'
    states carried from block to block.

    Args:
        sample_rate, n_fft, hop, window: the STFT (sqrt-hann on analysis and synthesis).
        channels, band, bin_channels, blocks: the network (:class:`DualPathCore`).
        minimum_seconds: the noise tracker's minimum-search span.

    Latency: ``n_fft - hop`` fed whole hops (160 samples = 10 ms at the defaults).
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 320, hop: int = 160, channels: int = 32,
                 band: int = 4, bin_channels: int = 16, blocks: int = 2, minimum_seconds: float = 1.5,
                 window: str = "sqrt-hann"):
        super().__init__(sample_rate, n_fft, hop, window, minimum_seconds)
        self.core = DualPathCore(n_fft // 2 + 1, hop / n_fft, channels, band, bin_channels, blocks, causal=True)


class DualPathDenoiser(CoreDenoiser):
    """Offline denoiser with a per-bin dual-path network: centred frames, bidirectional time GRUs, the log-MMSE
    prior, run in chunks with context so a long file has bounded memory.

    Args:
        sample_rate: Hz.
        n_fft, hop: the STFT (hann, centred frames).
        channels, band, bin_channels, blocks: the network (:class:`DualPathCore`).
        chunk_seconds, context_seconds: the chunked run (audio per window; context on each side).
        minimum_seconds: the noise tracker's minimum-search span.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop: int = 128, channels: int = 32,
                 band: int = 4, bin_channels: int = 16, blocks: int = 2, chunk_seconds: float = 8.0,
                 context_seconds: float = 1.0, minimum_seconds: float = 1.5):
        super().__init__(sample_rate, n_fft, hop, chunk_seconds, context_seconds, minimum_seconds)
        self.core = DualPathCore(n_fft // 2 + 1, hop / n_fft, channels, band, bin_channels, blocks, causal=False)
