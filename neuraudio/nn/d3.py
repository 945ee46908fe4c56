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
        """``padded``: the input with ``reach`` frames of past before the frames to compute. One convolution whose
        frequency kernel spans the widest dilation (each group's taps in place, zeros between), so no
        concatenation of the groups: on channels-last maps (what :class:`neuraudio.aec.neural.DualMaskNet` runs on)
        a concatenation along channels copies a few values per pixel, slower than the wider kernel's extra
        multiplications (the training step's cost: ``benchmarks/train_step.py``). Differentiable in the
        parameters; the same numbers as the groups' own convolutions to rounding."""
        if len(self.convs) == 1:
            return self.convs[0](padded)
        weight, bias, pad = self._widest_kernel()
        return nn.functional.conv2d(padded, weight, bias, padding=(pad, 0), dilation=(1, self.convs[0].dilation[1]))

    def _widest_kernel(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Every group's weights ``(out, in, 2 pad + 1, time taps)`` in one kernel over the widest dilation's span
        (tap ``m`` of a group with dilation ``d`` at ``pad + (m - kernel // 2) d``, zeros elsewhere), its bias and
        ``pad``; differentiable in the parameters."""
        pad = max(conv.dilation[0] * (conv.kernel_size[0] // 2) for conv in self.convs)
        parts = []
        for conv in self.convs:
            kf, d = conv.kernel_size[0], conv.dilation[0]
            place = torch.zeros(kf, 2 * pad + 1, dtype=conv.weight.dtype, device=conv.weight.device)
            place[torch.arange(kf), pad + (torch.arange(kf) - kf // 2) * d] = 1  # one-hot rows: where each tap sits
            parts.append(torch.einsum("oimt,mk->oikt", conv.weight, place))
        return torch.cat(parts), torch.cat([conv.bias for conv in self.convs]), pad

    def step(self, padded: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for the few frames of a streaming step, as one 1-D convolution over bins: the time taps
        folded into the channels, and one kernel spanning the widest dilation (zero outside each group's own taps)
        giving every group's output. On one CPU thread the three small dilated convolutions of a layer spend most of
        their time in per-call overhead, so fewer, larger calls win (an earlier gather of the taps by
        ``index_select`` over an unfolded view was the largest cost in profiles of ``aec-16k``'s step). Where
        gradients are wanted it is :meth:`forward` (the kernel is built without them)."""
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            return self.forward(padded)
        b, c, bins, frames = padded.shape
        weight, bias, pad = self._dense_kernel(padded.device, padded.dtype)
        n = frames - self.reach
        kt, dt = self.convs[0].kernel_size[1], self.convs[0].dilation[1]
        if n == 1:  # the usual step: frames 0, dt, 2 dt ... are the kernel's taps
            x = padded[..., ::dt].transpose(-1, -2).reshape(b, c * kt, bins)
        else:
            times = torch.stack([padded[..., i * dt : i * dt + n] for i in range(kt)], dim=2)  # (b, c, kt, bins, n)
            x = times.permute(0, 4, 1, 2, 3).reshape(b * n, c * kt, bins)
        out = nn.functional.conv1d(x, weight, bias, padding=pad)  # (b n, out, bins)
        return out.reshape(b, n, -1, bins).permute(0, 2, 3, 1)

    def step_taps(self, taps: torch.Tensor) -> torch.Tensor:
        """One frame: ``taps`` ``(batch, in_channels x time taps, bins)`` (each channel's taps oldest first, as
        :meth:`step` folds them) -> ``(batch, out_channels, bins)``."""
        weight, bias, pad = self._dense_kernel(taps.device, taps.dtype)
        return nn.functional.conv1d(taps, weight, bias, padding=pad)

    def _dense_kernel(self, device, dtype):
        """The kernel ``(out, in x time taps, 2 pad + 1)``, bias and padding of :meth:`step`, rebuilt when a
        parameter, the device or the dtype change."""
        # This key is checked on every step of every layer, so the modules' and parameters' dictionaries are read
        # directly: ``parameters()``'s generators and then ``nn.Module.__getattr__`` each showed up in profiles of
        # aec-16k's streaming step. An inference tensor (parameters copied inside torch.inference_mode) keeps no
        # version counter: its address stands alone, and it can only change in place inside inference mode.
        key = (device, dtype,
               tuple((-1 if t.is_inference() else t._version, t.data_ptr())
                     for conv in self.convs._modules.values() for t in conv._parameters.values() if t is not None))
        cached = getattr(self, "_step_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():  # the widest kernel with the time taps folded into the input channels
            weight, bias, pad = self._widest_kernel()
            rows, c, span, kt = weight.shape
            weight = weight.permute(0, 1, 3, 2).reshape(rows, c * kt, span).to(device, dtype)
            built = (weight, bias.to(device, dtype), pad)
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
        """One history ``(batch, out_channels, bins, R)``: the block's input and every layer's output over the last
        ``R`` frames (the deepest layer's reach); layer ``l`` reads its own input channels from it."""
        reach = max(layer.reach for layer in self.layers)
        return [torch.zeros(batch, self.out_channels, bins, reach, device=device, dtype=dtype)]

    def step(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
        """:meth:`forward` on new frames with the history of :meth:`init_cache` (updated in place: a CUDA graph of a
        step keeps pointing at it). One new frame (a streaming step's usual case, without gradients) takes a short
        path: the layers write into one preallocated output, and each reads its time taps from the history
        directly, so no layer concatenates or copies its own cache."""
        history = cache[0]
        b, _, bins, n = x.shape
        reach = history.shape[-1]
        wants_grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        if n == 1 and not wants_grad and all(layer.convs[0].kernel_size[1] == 2 for layer in self.layers):
            h = x.new_empty(b, self.out_channels, bins)
            channels = x.shape[1]
            h[:, :channels] = x[..., 0]
            for layer in self.layers:
                past = history[:, :channels, :, reach - layer.reach]  # the frame one time dilation back
                taps = torch.stack([past, h[:, :channels]], dim=2).reshape(b, 2 * channels, bins)
                grown = layer.step_taps(taps)
                h[:, channels : channels + grown.shape[1]] = nn.functional.elu(grown)
                channels += grown.shape[1]
            h = h[..., None]
        else:
            h = x
            for layer in self.layers:
                c = h.shape[1]
                padded = torch.cat([history[:, :c, :, reach - layer.reach :], h], dim=-1)
                h = torch.cat([h, nn.functional.elu(layer.step(padded))], dim=1)
        history.copy_(torch.cat([history, h], dim=-1)[..., -reach:])
        return h
