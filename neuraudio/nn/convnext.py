"""A ConvNeXt backbone over frames (Liu et al., 2022; in 1-D as Vocos and APNet use it), causal or centred.

    block(x) = x + gamma * W2 GELU(W1 LayerNorm(depthwise_conv_k(x)))

Causal (``lookahead=0``) means frame ``t`` of the output sees input frames ``<= t``; a few frames of lookahead
shift every depthwise convolution's window forward by that many frames in total (at the input layer). ``step``
runs new frames with a cache of the past frames each convolution needs: fed in pieces, it gives what ``forward``
gives on the whole sequence (the streaming vocoder's frame-by-frame path).

Shapes: ``(batch..., channels, frames)``.
"""

from __future__ import annotations

import torch
from torch import nn


def _keep(cache: list[torch.Tensor], i: int, frames: torch.Tensor) -> None:
    """Store ``frames`` as cache ``i``: in place when the shape is unchanged (a CUDA graph of a step keeps pointing at
    the cache's memory), else as a new tensor."""
    if cache[i].shape == frames.shape:
        cache[i].copy_(frames)
    else:
        cache[i] = frames


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, kernel: int = 7, expansion: int = 3, layer_scale: float = 0.1):
        super().__init__()
        self.kernel = kernel
        self.depthwise = nn.Conv1d(dim, dim, kernel, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up = nn.Linear(dim, expansion * dim)
        self.down = nn.Linear(expansion * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def body(self, padded: torch.Tensor, residual: torch.Tensor, direct: bool = False) -> torch.Tensor:
        """``padded``: the input with ``kernel - 1`` frames of context; ``residual``: the input's own frames.
        ``direct``: the depthwise convolution as a product with the frames' windows (``step``'s few frames: a
        convolution call costs about 100 us per frame on one CPU thread, this a tenth of that)."""
        if direct:  # a product and a sum: less call overhead than einsum for a frame or two
            windows = padded.unfold(-1, self.kernel, 1)  # (batch, dim, frames, kernel)
            h = (windows * self.depthwise.weight).sum(-1).transpose(-1, -2) + self.depthwise.bias
        else:
            h = self.depthwise(padded).transpose(-1, -2)
        h = self.down(nn.functional.gelu(self.up(self.norm(h)), approximate="tanh"))
        return residual + (self.gamma * h).transpose(-1, -2)


class ConvNeXt(nn.Module):
    """Input convolution, ``layers`` ConvNeXt blocks and a final LayerNorm.

    Args:
        in_channels: features per input frame.
        dim: channels of the backbone.
        layers: ConvNeXt blocks.
        kernel: depthwise kernel in frames (odd).
        causal: pad every convolution on the left only (streaming); otherwise symmetrically (offline).
        lookahead: causal only: future frames the input convolution sees (the only source of lookahead).
        embed_kernel: frames the input convolution spans (1: a per-frame projection, the cheap choice for wide
            inputs; the blocks still see ``kernel`` frames each).
    """

    def __init__(self, in_channels: int, dim: int = 256, layers: int = 6, kernel: int = 7, causal: bool = False,
                 lookahead: int = 0, expansion: int = 3, embed_kernel: int | None = None):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd number of frames, got {kernel}.")
        embed_kernel = kernel if embed_kernel is None else embed_kernel
        if embed_kernel < 1 or embed_kernel % 2 == 0:
            raise ValueError(f"embed_kernel must be an odd number of frames, got {embed_kernel}.")
        if lookahead < 0 or (lookahead and not causal) or lookahead >= embed_kernel:
            raise ValueError(f"lookahead must be 0..{embed_kernel - 1} frames and needs causal=True, got {lookahead}.")
        self.causal, self.lookahead, self.kernel, self.embed_kernel = causal, lookahead, kernel, embed_kernel
        self.embed = nn.Conv1d(in_channels, dim, embed_kernel)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, kernel, expansion, 1.0 / layers) for _ in range(layers))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    @property
    def receptive_field(self) -> int:
        """Frames of input that one output frame depends on."""
        return len(self.blocks) * (self.kernel - 1) + self.embed_kernel

    def _pad(self, x: torch.Tensor, left: int, right: int) -> torch.Tensor:
        return nn.functional.pad(x, (left, right))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, e = self.kernel, self.embed_kernel
        lead = x.shape[:-2]
        x = x.reshape(-1, *x.shape[-2:])
        if self.causal:
            h = self.embed(self._pad(x, e - 1 - self.lookahead, self.lookahead))
            for block in self.blocks:
                h = block.body(self._pad(h, k - 1, 0), h)
        else:
            h = self.embed(self._pad(x, e // 2, e // 2))
            for block in self.blocks:
                h = block.body(self._pad(h, k // 2, k // 2), h)
        h = self.norm(h.transpose(-1, -2)).transpose(-1, -2)
        return h.reshape(*lead, *h.shape[-2:])

    # ---- streaming (causal only) --------------------------------------------------------------------------------
    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> list[torch.Tensor]:
        """Zeros for the frames before the first: the input convolution's and each block's past frames. With
        lookahead, the input convolution's cache also holds the frames it waits for."""
        if not self.causal:
            raise ValueError("step needs a causal backbone (causal=True).")
        k = self.kernel
        caches = [torch.zeros(batch, self.embed.in_channels, self.embed_kernel - 1 - self.lookahead, device=device,
                              dtype=dtype)]
        caches += [torch.zeros(batch, blk.depthwise.in_channels, k - 1, device=device, dtype=dtype)
                   for blk in self.blocks]
        return caches

    def step(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
        """``x``: ``(batch, in_channels, n)`` new frames -> ``(batch, dim, n)`` output frames (delayed by the
        lookahead: output frame ``j`` is the one of input frame ``j - lookahead`` counted over the whole stream).
        ``cache`` is updated in place."""
        padded = torch.cat([cache[0], x], dim=-1)
        reach, width = self.embed_kernel - 1, self.kernel - 1
        _keep(cache, 0, padded[..., max(0, padded.shape[-1] - reach):])  # grows to its full width after a lookahead
        if padded.shape[-1] <= reach:
            return x.new_zeros(x.shape[0], self.embed.out_channels, 0)
        if reach == 0:  # a per-frame projection: a matrix product, not a convolution call
            h = torch.matmul(self.embed.weight[..., 0], padded) + self.embed.bias[:, None]
        else:
            h = self.embed(padded)
        for i, block in enumerate(self.blocks, start=1):
            padded = torch.cat([cache[i], h], dim=-1)
            _keep(cache, i, padded[..., padded.shape[-1] - width:])
            h = block.body(padded, h, direct=True)
        return self.norm(h.transpose(-1, -2)).transpose(-1, -2)


class SpectralConv(nn.Module):
    """A stack of 2-D convolutions over ``(bins, frames)`` maps, the same weights at every frequency: a local
    refiner for per-bin quantities (a phase correction). Causal in time (``causal=True``: each frame sees the
    ``time_kernel - 1`` frames before it per layer) or centred; ``step`` runs new frames with caches.

    Shapes: ``(batch, in_channels, bins, frames)`` -> ``(batch, out_channels, bins, frames)``.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 16, layers: int = 4,
                 freq_kernel: int = 5, time_kernel: int = 3, causal: bool = False):
        super().__init__()
        if freq_kernel % 2 == 0 or time_kernel % 2 == 0:
            raise ValueError("kernels must be odd.")
        self.causal, self.freq_kernel, self.time_kernel = causal, freq_kernel, time_kernel
        widths = [in_channels] + [channels] * layers
        self.convs = nn.ModuleList(nn.Conv2d(a, b, (freq_kernel, time_kernel)) for a, b in zip(widths, widths[1:]))
        self.out = nn.Conv2d(widths[-1], out_channels, 1)

    def _pad(self, h: torch.Tensor, left: int, right: int) -> torch.Tensor:
        f = self.freq_kernel // 2
        return nn.functional.pad(h, (left, right, f, f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Zero padding inside the convolution (causal: ``t`` frames both sides, then the first ``frames`` outputs
        # are the causal ones) and channels-last memory: faster on CPU than padded copies, the same numbers.
        f, t, frames = self.freq_kernel // 2, self.time_kernel - 1, x.shape[-1]
        h = x.contiguous(memory_format=torch.channels_last)
        for conv in self.convs:
            h = nn.functional.conv2d(h, conv.weight, conv.bias, padding=(f, t if self.causal else t // 2))
            h = nn.functional.gelu(h[..., :frames] if self.causal else h)
        return self.out(h)

    def init_cache(self, batch: int, bins: int, device=None, dtype=torch.float32) -> list[torch.Tensor]:
        if not self.causal:
            raise ValueError("step needs a causal refiner (causal=True).")
        return [torch.zeros(batch, conv.in_channels, bins, self.time_kernel - 1, device=device, dtype=dtype)
                for conv in self.convs]

    def step(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.out.out_channels, x.shape[-2], 0)
        h = x
        for i, conv in enumerate(self.convs):
            padded = torch.cat([cache[i], h], dim=-1)
            _keep(cache, i, padded[..., padded.shape[-1] - cache[i].shape[-1]:])
            h = nn.functional.gelu(conv(self._pad(padded, 0, 0)))
        return self.out(h)
