"""Multi-dilated dense blocks over ``(bins, frames)`` maps (the D3Net family: Takahashi & Mitsufuji, 2021), causal
in time, with step caches for frame-by-frame streaming.

A block of ``layers`` layers: layer ``l`` reads the block's input and every earlier layer's output (dense
connectivity), and its ``growth`` output channels are split into groups that look at different dilations along
frequency (multi-dilated: ``1, 2, 4, ...``), with a causal time kernel whose dilation doubles with depth, so a few
layers see far along both axes without pooling. The block returns its input and all layers' outputs concatenated.

Causal: output frame ``t`` depends on input frames ``<= t``; ``step`` runs new frames with a cache of the past
frames each layer needs, and fed in pieces equals ``forward`` on the whole sequence.

Shapes: ``(batch, channels, bins, frames)``.
"""

from __future__ import annotations

import torch
from torch import nn


class MultiDilatedConv(nn.Module):
    """``out_channels`` split over ``len(freq_dilations)`` groups, each a ``freq_kernel x time_kernel`` convolution
    with its own frequency dilation (time dilation shared), zero-padded along frequency, causal along time (the
    caller supplies the past frames)."""

    def __init__(self, in_channels: int, out_channels: int, freq_dilations=(1, 2, 4), time_dilation: int = 1,
                 freq_kernel: int = 3, time_kernel: int = 2):
        super().__init__()
        groups = len(freq_dilations)
        sizes = [out_channels // groups + (i < out_channels % groups) for i in range(groups)]
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, size, (freq_kernel, time_kernel), dilation=(d, time_dilation),
                      padding=(d * (freq_kernel // 2), 0))
            for size, d in zip(sizes, freq_dilations) if size)
        self.reach = (time_kernel - 1) * time_dilation  # past frames one output frame needs

    def forward(self, padded: torch.Tensor) -> torch.Tensor:
        """``padded``: the input with ``reach`` frames of past before the frames to compute."""
        return torch.cat([conv(padded) for conv in self.convs], dim=1)

    def step(self, padded: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for the few frames of a streaming step, as one gather and one matrix product: all
        groups' taps (frequency offsets by each group's dilation, time offsets by the shared one) are picked from
        ``padded`` by one index, and one weight matrix, zero outside each group's own taps, gives every group's
        output. On one CPU thread the three small dilated convolutions of a layer spend most of their time in
        per-call overhead. Where gradients are wanted it is :meth:`forward` (the matrix is built without them)."""
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            return self.forward(padded)
        b, c, bins, frames = padded.shape
        index, weight, bias, pad = self._tap_matrix(bins, padded.device, padded.dtype)
        n = frames - self.reach
        kt, dt = self.convs[0].kernel_size[1], self.convs[0].dilation[1]
        # (b, n, c, kt, bins): frequency last, so the gather below reads contiguous rows
        times = torch.stack([padded[..., i * dt : i * dt + n] for i in range(kt)], dim=2).permute(0, 4, 1, 2, 3)
        times = nn.functional.pad(times, (pad, pad))  # zeros past the band edges, as the convs' padding
        # every window of ``bins`` along frequency is a view; the taps pick whole rows of them
        taps = times.unfold(-1, bins, 1).index_select(-2, index).reshape(b * n, -1, bins)  # (b n, c kt taps, bins)
        out = torch.matmul(weight, taps) + bias.view(-1, 1)  # (b n, out, bins)
        return out.reshape(b, n, -1, bins).permute(0, 2, 3, 1)

    def _tap_matrix(self, bins: int, device, dtype):
        """The index, weight matrix and bias of :meth:`step`, rebuilt when a parameter, the bins, the device or the
        dtype change."""
        # the parameters read directly, not through ``parameters()``, whose generator machinery showed up in
        # profiles of aec-16k's streaming step (this key is checked on every step)
        key = (bins, device, dtype,
               tuple((t._version, t.data_ptr()) for conv in self.convs for t in (conv.weight, conv.bias)))
        cached = getattr(self, "_step_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            pad = max(conv.dilation[0] * (conv.kernel_size[0] // 2) for conv in self.convs)
            offsets = [pad + (m - conv.kernel_size[0] // 2) * conv.dilation[0]
                       for conv in self.convs for m in range(conv.kernel_size[0])]
            index = torch.tensor(offsets, device=device)  # each tap's first bin in the padded axis
            c, kt = self.convs[0].in_channels, self.convs[0].kernel_size[1]
            rows = sum(conv.out_channels for conv in self.convs)
            weight = torch.zeros(rows, c, kt, len(offsets), device=device, dtype=dtype)
            row = tap = 0
            for conv in self.convs:
                o, kf = conv.out_channels, conv.kernel_size[0]
                weight[row : row + o, :, :, tap : tap + kf] = conv.weight.to(dtype).permute(0, 1, 3, 2)
                row, tap = row + o, tap + kf
            bias = torch.cat([conv.bias for conv in self.convs]).to(device, dtype)
            built = (index, weight.reshape(rows, -1), bias, pad)
        self._step_cache = (key, built)
        return built


class D3Block(nn.Module):
    """A multi-dilated dense block (module docstring): ``in_channels`` -> ``in_channels + layers * growth``."""

    def __init__(self, in_channels: int, growth: int = 16, layers: int = 4, freq_dilations=(1, 2, 4),
                 freq_kernel: int = 3, time_kernel: int = 2):
        super().__init__()
        self.layers = nn.ModuleList()
        channels = in_channels
        for i in range(layers):
            self.layers.append(MultiDilatedConv(channels, growth, freq_dilations, 2 ** i, freq_kernel, time_kernel))
            channels += growth
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers:
            padded = nn.functional.pad(h, (layer.reach, 0))
            h = torch.cat([h, nn.functional.elu(layer(padded))], dim=1)
        return h

    def init_cache(self, batch: int, bins: int, device=None, dtype=torch.float32) -> list[torch.Tensor]:
        channels = [layer.convs[0].in_channels for layer in self.layers]
        return [torch.zeros(batch, c, bins, layer.reach, device=device, dtype=dtype)
                for c, layer in zip(channels, self.layers)]

    def step(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            padded = torch.cat([cache[i], h], dim=-1)
            keep = padded[..., padded.shape[-1] - layer.reach:]
            if cache[i].shape == keep.shape:
                cache[i].copy_(keep)  # in place: a CUDA graph of a step keeps pointing at the cache
            else:
                cache[i] = keep.clone()
            h = torch.cat([h, nn.functional.elu(layer.step(padded))], dim=1)
        return h
