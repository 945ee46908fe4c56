"""A hybrid waveform/spectrogram separator (the Hybrid Demucs family, Defossez 2021), sized for CPU training.

Two U-Nets meet at one frame rate:

* **spectrogram branch**: a centred STFT (``n_fft`` 4096, ``hop`` 1024 at 44.1 kHz), complex-as-channels (real and
  imaginary parts of each input channel: 4 channels for stereo) over ``n_fft / 2`` bins (the Nyquist bin is dropped
  and comes back as zero). ``depth`` encoder layers each divide the bins by ``stride`` (a ``2 stride x 1``
  convolution) and look at three frames (a ``1 x 3`` convolution); the decoder mirrors them with U-Net skips and
  predicts every stem's complex spectrogram, which the ISTFT turns into waveforms aligned with the input.
* **waveform branch**: ``log_stride(hop)`` 1-D convolutions of stride ``stride`` bring the samples down to one
  feature vector per ``hop`` samples, the STFT's frame rate; the decoder (transposed convolutions, skips) predicts
  every stem's waveform.
* **shared bottleneck**: both branches' deepest features, projected to ``dim`` channels and summed, run through
  ``blocks`` ConvNeXt blocks over frames (centred, ``kernel`` frames each); the result is projected back and added to
  each branch before its decoder.

Output: the spectrogram branch's ISTFT plus the waveform branch, per stem; with ``sum_to_mixture`` the stems are
then moved by equal shares of what they miss, so they sum to the input exactly. With ``subtract_silence`` the
windows' output for a silent window is subtracted (at inference, cached): the biases of a trained network otherwise
give every stem a constant offset and a buzz periodic in the ``hop`` grid (hybrid-4stem on digital silence: offsets
up to -50 dBFS, a 43 Hz-periodic pattern at -63 to -69 dBFS with its 11 kHz line), so zero in now gives zero out.
(On music the transposed convolutions still make an 11 kHz line that depends on the input: training removes it.)

No per-window normalisation: the output of a window depends on its samples only, so through
:class:`~neuraudio.stream.chunked.ChunkedProcessor` (windows of ``chunk_seconds`` with ``context_seconds`` either
side) the chunked output equals one pass over the whole signal wherever the model's reach is within the context
(its receptive field: ``receptive_field_samples``). Training normalises levels by random gain instead.

Shape:
    ``process(x)``: ``(..., 2, time)`` -> ``(..., stems, 2, time)``.

Example:
    >>> model = neuraudio.load("hybrid-4stem")
    >>> drums, bass, other, vocals = model.process(song)     # song: (2, time) at 44.1 kHz
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from neuraudio.nn.convnext import ConvNeXt
from neuraudio.stream.chunked import ChunkedProcessor
from neuraudio.stream.stft import STFT

STEMS = ("drums", "bass", "other", "vocals")


class _Down(nn.Module):
    """Encoder layer: a strided convolution along one axis, then a 3-tap convolution along time, GELU each."""

    def __init__(self, conv: type, cin: int, cout: int, stride: int, spectral: bool):
        super().__init__()
        if spectral:  # (batch, channels, bins, frames): stride along bins, look along frames
            self.down = nn.Conv2d(cin, cout, (2 * stride, 1), (stride, 1), (stride // 2, 0))
            self.mix = nn.Conv2d(cout, cout, (1, 3), padding=(0, 1))
        else:  # (batch, channels, samples)
            self.down = nn.Conv1d(cin, cout, 2 * stride, stride, stride // 2)
            self.mix = nn.Conv1d(cout, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.gelu(self.down(x))
        return h + nn.functional.gelu(self.mix(h))


class _Up(nn.Module):
    """Decoder layer: the skip added, a 3-tap convolution along time, then a strided transposed convolution."""

    def __init__(self, cin: int, cout: int, stride: int, spectral: bool, last: bool):
        super().__init__()
        if spectral:
            self.mix = nn.Conv2d(cin, cin, (1, 3), padding=(0, 1))
            self.up = nn.ConvTranspose2d(cin, cout, (2 * stride, 1), (stride, 1), (stride // 2, 0))
        else:
            self.mix = nn.Conv1d(cin, cin, 3, padding=1)
            self.up = nn.ConvTranspose1d(cin, cout, 2 * stride, stride, stride // 2)
        self.last = last

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        h = x + skip
        h = h + nn.functional.gelu(self.mix(h))
        h = self.up(h)
        return h if self.last else nn.functional.gelu(h)


class HybridSeparator(ChunkedProcessor):
    """Hybrid waveform/spectrogram separator (module docstring).

    Args:
        sample_rate: Hz (44.1 kHz models).
        stems: names of the outputs.
        n_fft, hop: the STFT; ``hop`` must be a power of ``stride`` (the waveform branch's depth is
            ``log_stride(hop)``) and ``n_fft / 2`` divisible by ``stride ** depth``.
        width: channels of the first layer of each branch (doubling each layer, at most ``8 width``).
        depth: spectrogram-branch layers.
        stride: the down-sampling of every layer.
        dim, blocks, kernel: the shared ConvNeXt bottleneck.
        chunk_seconds, context_seconds: the windows of :class:`ChunkedProcessor` (rounded to whole hops).
        sum_to_mixture: make the stems sum to the input.
        subtract_silence: subtract the output of a silent window from every window's (module docstring).
    """

    task = "separation"
    in_channels = 2
    out_channels = 2

    def __init__(self, sample_rate: int = 44100, stems: Sequence[str] = STEMS, n_fft: int = 4096, hop: int = 1024,
                 width: int = 16, depth: int = 4, stride: int = 4, dim: int = 256, blocks: int = 4, kernel: int = 7,
                 chunk_seconds: float = 10.0, context_seconds: float = 2.0, sum_to_mixture: bool = False,
                 subtract_silence: bool = False):
        chunk = max(1, round(chunk_seconds * sample_rate / hop)) * hop
        context = max(1, round(context_seconds * sample_rate / hop)) * hop
        super().__init__(sample_rate, chunk, context)
        wave_depth = round(math.log(hop, stride))
        if stride ** wave_depth != hop:
            raise ValueError(f"hop must be a power of stride {stride}, got {hop}.")
        bins = n_fft // 2
        if bins % stride ** depth:
            raise ValueError(f"n_fft / 2 = {bins} must be divisible by stride ** depth = {stride ** depth}.")
        if not stems:
            raise ValueError("a separator needs at least one stem.")
        self.stems = tuple(stems)
        self.n_fft, self.frame_hop, self.sum_to_mixture = int(n_fft), int(hop), bool(sum_to_mixture)
        self.subtract_silence = bool(subtract_silence)
        # zeros beyond the edges (not reflections), as the windows of ChunkedProcessor see them: one pass over a whole
        # signal then equals the chunked output at its edges too
        self.transform = STFT(n_fft, hop, center=True, pad_mode="constant")
        count, channels = len(self.stems), self.in_channels

        def widths(layers: int) -> list[int]:
            return [min(8 * width, width * 2 ** i) for i in range(layers)]

        spec_w, wave_w = widths(depth), widths(wave_depth)
        self.spec_down = nn.ModuleList(_Down(nn.Conv2d, c_in, c_out, stride, True)
                                       for c_in, c_out in zip([2 * channels] + spec_w[:-1], spec_w))
        self.wave_down = nn.ModuleList(_Down(nn.Conv1d, c_in, c_out, stride, False)
                                       for c_in, c_out in zip([channels] + wave_w[:-1], wave_w))
        self.spec_up = nn.ModuleList(_Up(c_in, c_out, stride, True, i == 0)
                                     for i, (c_in, c_out) in enumerate(zip(spec_w, [2 * channels * count] + spec_w[:-1])))
        self.wave_up = nn.ModuleList(_Up(c_in, c_out, stride, False, i == 0)
                                     for i, (c_in, c_out) in enumerate(zip(wave_w, [channels * count] + wave_w[:-1])))
        spec_features = spec_w[-1] * (bins // stride ** depth)
        self.spec_in, self.wave_in = nn.Linear(spec_features, dim), nn.Linear(wave_w[-1], dim)
        self.bottleneck = ConvNeXt(dim, dim, blocks, kernel, causal=False, embed_kernel=1)
        self.spec_out, self.wave_out = nn.Linear(dim, spec_features), nn.Linear(dim, wave_w[-1])
        self.spec_scale = 1.0 / math.sqrt(n_fft)

    @property
    def receptive_field_samples(self) -> int:
        """Samples either side of an output sample that can change it (the bottleneck's reach, plus one frame of
        each branch's 3-tap convolutions per layer and the STFT frame): what ``context_seconds`` should cover."""
        frames = (self.bottleneck.receptive_field - 1) // 2 + 2 * len(self.spec_down) + 1
        return frames * self.frame_hop + self.n_fft // 2

    def separate(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 2, time)`` -> ``(batch, stems, 2, time)`` (padded with zeros to whole hops inside)."""
        batch, channels, original = x.shape
        x = nn.functional.pad(x, (0, -original % self.frame_hop))
        length, count = x.shape[-1], len(self.stems)
        spec = self.transform(x)[..., :-1, :] * self.spec_scale  # (batch, channels, bins, frames), Nyquist dropped
        h = torch.cat([spec.real, spec.imag], dim=1)
        spec_skips, wave_skips = [], []
        for layer in self.spec_down:
            h = layer(h)
            spec_skips.append(h)
        w = x
        for layer in self.wave_down:
            w = layer(w)
            wave_skips.append(w)
        frames = h.shape[-1]  # length / hop + 1 (centred); the waveform branch has length / hop
        spec_flat = h.flatten(1, 2)  # (batch, channels * bins, frames)
        z = self.spec_in(spec_flat.transpose(1, 2)) \
            + nn.functional.pad(self.wave_in(w.transpose(1, 2)), (0, 0, 0, frames - w.shape[-1]))
        z = self.bottleneck(z.transpose(1, 2)).transpose(1, 2)
        h = h + self.spec_out(z).transpose(1, 2).reshape(h.shape)
        w = w + self.wave_out(z[:, : w.shape[-1]]).transpose(1, 2)
        for layer, skip in zip(reversed(self.spec_up), reversed(spec_skips)):
            h = layer(h, skip)
        for layer, skip in zip(reversed(self.wave_up), reversed(wave_skips)):
            w = layer(w, skip)
        h = h.reshape(batch, count, 2, channels, *h.shape[-2:])
        out_spec = torch.complex(h[:, :, 0], h[:, :, 1]) / self.spec_scale
        out_spec = nn.functional.pad(out_spec, (0, 0, 0, 1))  # the Nyquist bin back, as zero
        y = self.transform.inverse(out_spec, length=length) + w.reshape(batch, count, channels, length)
        if self.sum_to_mixture:
            y = y + (x[:, None] - y.sum(1, keepdim=True)) / count
        return y[..., :original]

    def process_window(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        lead = x.shape[:-2]
        flat = x.reshape(-1, *x.shape[-2:])
        y = self.separate(flat)
        if self.subtract_silence:
            y = y - self.silence_response(flat.shape[-1], flat.device, flat.dtype)
        return y.reshape(*lead, *y.shape[-3:])

    def silence_response(self, length: int, device, dtype) -> torch.Tensor:
        """The output ``(1, stems, 2, length)`` for a silent window, computed without gradients; where gradients
        are off it is cached until the length, the device, the dtype or a parameter changes."""
        key = (length, device, dtype, tuple((p._version, p.data_ptr()) for p in self.parameters()))
        cached = getattr(self, "_silence", None)
        if cached is not None and cached[0] == key and not torch.is_grad_enabled():
            return cached[1]
        with torch.no_grad():
            response = self.separate(torch.zeros(1, self.in_channels, length, device=device, dtype=dtype))
        if not torch.is_grad_enabled():
            self._silence = (key, response)
        return response

    def training_terms(self, mixture: torch.Tensor, stems: torch.Tensor) -> dict[str, torch.Tensor]:
        """Crops ``mixture`` ``(batch, 2, time)`` and their ``stems`` ``(batch, stems, 2, time)``: the estimate and
        the target."""
        return {"estimate": self.separate(mixture), "target": stems}
