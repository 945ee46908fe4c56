"""Neural echo cancellation with joint noise suppression behind the linear canceller (the dual-mask design of
Watcharasupat et al., 2021, on pseudo-complex multi-dilated dense blocks).

Per block of ``N = hop`` samples (10 ms at 16 kHz):

1. **Linear stage**: ``aec-linear``'s delay tracker and two-path adaptive filter (``LinearAEC.linear_block``) give the
   error ``e = mic - y`` and the echo estimate ``y``.
2. **Frames**: ``e``, ``y`` and ``mic`` on a sqrt-hann STFT (frame ``2N``, hop ``N``), each as a pseudo-complex
   pair of channels (real and imaginary parts of the power-law compressed spectrum, ``|X|^0.3`` with the phase):
   six channels over ``N + 1`` bins.
3. **Network** (:class:`DualMaskNet`): an input convolution that keeps every ``stride``-th bin, multi-dilated
   dense blocks (``neuraudio.nn.d3``, causal in time) with 1x1 transitions, and two sigmoid heads upsampled back to
   every bin: an echo mask and a noise mask. With ``complex_masks``, two more heads ``(a, b)`` rotate the echo
   mask by ``atan2(b, 1 + a)``: a complex echo mask of magnitude at most 1. With ``fine_channels``, a fine stage
   at every bin (convolutions along frequency only, so nothing to cache) reads the six input channels, each
   bin's compressed magnitudes and the normalized cross-spectrum of ``E`` and ``Y``, the upsampled features and
   the upsampled head logits, and adds a correction to those logits: masks that change from one bin to the next,
   which double talk needs (near-end and echo harmonics interleave closer than the coarse heads' spacing).
4. **Output**: ``E * m_echo * m_noise``, overlap-added with the same window: latency ``N`` (10 ms), the linear stage
   included. The knob ``noise_reduction_db`` bounds the noise mask from below (``m_noise >= 10^(-dB/20)``): how
   much background noise is taken out, as WebRTC's noise suppressor offers levels of 6 to 21 dB. Its maximum (60)
   sets no bound; the echo mask is never bounded.

Why complex: in double talk a magnitude mask on ``E`` must scale the near end wherever the residual echo is
louder, whatever it knows. With the near end known, the ideal ratio mask ``min(1, |S| / |E|)`` still takes
2.07 dB of it; ``S / E`` with its magnitude clipped to 1 takes 0.44 dB (``benchmarks/aec.py --data data/echo_test
ideal@1 ideal@c1``, the 20 double-talk clips of the synthetic test set; aec-16k's card has the table).

Training (``training_terms``) reads precomputed linear-stage signals (``e``, ``y``) when given, so the sequential
adaptive filter runs once per clip rather than once per epoch.

Example:
    >>> aec = neuraudio.load("aec-16k")
    >>> near = aec.process(mic, ref)              # (1, time) each, 16 kHz
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import torch
from torch import nn

from neuraudio.aec.linear import LinearAEC, subtract_residual
from neuraudio.nn.d3 import D3Block
from neuraudio.stream import spectral
from neuraudio.stream.knobs import Knob
from neuraudio.stream.processor import Processor
from neuraudio.stream.stft import istft, stft

POWER = 0.3


class _FrequencyConv(nn.Conv2d):
    """A ``(k, 1)`` convolution (along frequency only) that runs a streaming step's few frames as a 1-D convolution
    over bins with the frames folded into the batch: the same numbers, and for the fine stage's first layer (31
    channels in, 161 bins, one frame) faster than Conv2d in an ad hoc timing on one thread (not in the repo, so no
    figure here; Conv2d takes a slow path for that shape). Every ``(k, 1)`` convolution of :class:`DualMaskNet` is one (the
    same parameters as ``nn.Conv2d``, so folders load unchanged). Long sequences (training, offline) keep Conv2d,
    the faster there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 4:
            return super().forward(x)
        b, c, bins, frames = x.shape
        if frames == 1:  # a streaming step's one frame: no folding to do
            y = nn.functional.conv1d(x[..., 0], self.weight[..., 0], self.bias, self.stride[0], self.padding[0],
                                     self.dilation[0])
            return y[..., None]
        y = nn.functional.conv1d(x.permute(0, 3, 1, 2).reshape(b * frames, c, bins), self.weight[..., 0], self.bias,
                                 self.stride[0], self.padding[0], self.dilation[0])
        return y.reshape(b, frames, -1, y.shape[-1]).permute(0, 2, 3, 1)


class DualMaskNet(nn.Module):
    """Pseudo-complex features ``(batch, 6, bins, frames)`` -> echo and noise masks ``(batch, 2, bins, frames)``,
    causal in time (module docstring, step 3)."""

    def __init__(self, bins: int, channels: int = 24, growth: int = 12, blocks: int = 2, layers: int = 4,
                 freq_dilations=(1, 2, 4), stride: int = 2, complex_masks: bool = False, fine_channels: int = 0):
        super().__init__()
        self.bins, self.complex_masks = bins, bool(complex_masks)
        heads = 4 if complex_masks else 2
        self.encode = _FrequencyConv(6, channels, (2 * stride + 1, 1), stride=(stride, 1), padding=(stride, 0))
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for _ in range(blocks):
            block = D3Block(channels, growth, layers, freq_dilations)
            self.blocks.append(block)
            self.transitions.append(_FrequencyConv(block.out_channels, channels, 1))
        self.heads = _FrequencyConv(channels, heads, 1)
        nn.init.zeros_(self.heads.weight)
        nn.init.zeros_(self.heads.bias)  # the rotation starts at 0
        nn.init.constant_(self.heads.bias[:2], 3.0)  # masks start near 1: the linear stage's output passes
        self.fine = None
        if fine_channels:
            self.fine = nn.Sequential(
                _FrequencyConv(6 + 5 + channels + heads, fine_channels, (3, 1), padding=(1, 0)), nn.ELU(),
                _FrequencyConv(fine_channels, fine_channels, (3, 1), padding=(2, 0), dilation=(2, 1)), nn.ELU(),
                _FrequencyConv(fine_channels, heads, 1))
            nn.init.zeros_(self.fine[-1].weight)  # starts as no correction
            nn.init.zeros_(self.fine[-1].bias)
        coarse = (bins + 2 * stride - (2 * stride + 1)) // stride + 1  # bins after the input convolution
        self.register_buffer("upsample", linear_upsampling(coarse, bins), persistent=False)

    @staticmethod
    def bin_features(features: torch.Tensor) -> torch.Tensor:
        """``(batch, 6, bins, frames)`` pseudo-complex (e, y, mic) -> ``(batch, 5, bins, frames)``: the three
        compressed magnitudes and ``E conj(Y) / (|E| |Y|)`` (real, imaginary): what one bin says about its echo.
        Channels last in memory, as the whole-sequence path's other maps."""
        e, y, mic = (torch.complex(features[:, 2 * i], features[:, 2 * i + 1]) for i in range(3))
        cross = e * y.conj()
        cross = cross / (cross.abs() + 1e-4)
        return torch.stack([e.abs(), y.abs(), mic.abs(), cross.real, cross.imag], dim=-1).permute(0, 3, 1, 2)

    def to_bins(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, coarse bins, frames)`` -> ``(batch, channels, bins, frames)`` by linear interpolation
        along frequency (ends aligned): one matrix product, cheaper in a streaming step than ``interpolate``. A
        channels-last map stays channels last (the product runs on its memory as it lies: no copy)."""
        if _channels_last(x):
            b, c, coarse, frames = x.shape
            up = torch.matmul(self.upsample.T, x.permute(0, 2, 3, 1).reshape(b, coarse, frames * c))
            return up.reshape(b, -1, frames, c).permute(0, 3, 1, 2)
        return torch.matmul(x.transpose(-1, -2), self.upsample).transpose(-1, -2)

    def _decode(self, h: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``(batch, 2, bins, frames)`` masks in ``[0, 1]``, and with ``complex_masks`` the rotation's ``(a, b)``."""
        logits = self.heads(h)
        up = self.to_bins(logits)
        if self.fine is not None:
            up = up + self.fine(torch.cat([features, self.bin_features(features), self.to_bins(h), up], dim=1))
        if not self.complex_masks:
            return torch.sigmoid(up)
        return torch.cat([torch.sigmoid(up[:, :2]), up[:, 2:]], dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Whole sequences (training, offline). Every map is kept channels last in memory: oneDNN's convolutions
        with this few channels run several times faster so, backward most of all (``benchmarks/train_step.py``
        gives the training step's cost), and the same numbers to rounding."""
        features = features.contiguous(memory_format=torch.channels_last)
        h = nn.functional.elu(self.encode(features))
        for block, transition in zip(self.blocks, self.transitions):
            h = h + nn.functional.elu(transition(block(h)))
        return self._decode(h, features)

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> list:
        (kernel, _), (stride, _), (padding, _) = self.encode.kernel_size, self.encode.stride, self.encode.padding
        bins = (self.bins + 2 * padding - kernel) // stride + 1  # after the input convolution
        return [block.init_cache(batch, bins, device, dtype) for block in self.blocks]

    def step(self, features: torch.Tensor, cache: list) -> torch.Tensor:
        h = nn.functional.elu(self.encode(features))
        for block, transition, c in zip(self.blocks, self.transitions, cache):
            h = h + nn.functional.elu(transition(block.step(h, c)))
        return self._decode(h, features)


def _channels_last(x: torch.Tensor) -> bool:
    """A 4-d map whose channels lie next to each other in memory (and more than one of them)."""
    return x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last)


def linear_upsampling(coarse: int, bins: int) -> torch.Tensor:
    """``(coarse, bins)``: the matrix that interpolates ``coarse`` points linearly onto ``bins`` with both ends
    aligned (``interpolate(..., mode="linear", align_corners=True)`` along one axis)."""
    position = torch.arange(bins, dtype=torch.float64) * (coarse - 1) / max(bins - 1, 1)
    low = position.floor().long().clamp(max=coarse - 1)
    high = (low + 1).clamp(max=coarse - 1)
    frac = position - low
    matrix = torch.zeros(coarse, bins, dtype=torch.float64)
    matrix[low, torch.arange(bins)] += 1 - frac
    matrix[high, torch.arange(bins)] += frac
    return matrix.float()


def pseudo_complex(spec: torch.Tensor) -> torch.Tensor:
    """``(..., bins, frames)`` complex -> ``(..., 2, bins, frames)``: real and imaginary parts of ``|X|^0.3 e^{i phase}``."""
    compressed = spectral.compress(spec, POWER)
    return torch.stack([compressed.real, compressed.imag], dim=-3)


class DualMaskAEC(Processor):
    """Linear canceller + dual-mask network (module docstring).

    Args:
        sample_rate: Hz (16 kHz models).
        hop: block length (frames are ``2 hop``).
        partitions, max_delay_ms, margin, step: the linear stage (:class:`neuraudio.aec.linear.LinearAEC`).
        channels, growth, blocks, layers, stride: the network (:class:`DualMaskNet`; ``stride``: the input
            convolution keeps every ``stride``-th bin).
        complex_masks: rotate the echo mask (module docstring).
        fine_channels: width of the fine stage at every bin (0: none; module docstring).
        noise_reduction_db: the default of the knob of that name (a folder's ``config.json`` carries it).

    A folder without the rotation heads, the fine stage or the last blocks starts a model with them as the same
    function (:meth:`load_narrower`).
    """

    task = "echo"
    inputs = {"mic": 1, "ref": 1}
    out_channels = 1
    knobs = {"noise_reduction_db": Knob(60.0, 0.0, 60.0, "dB", "the most the noise mask attenuates a bin "
                                        "(60: no limit; 0: echo removal only)")}

    def __init__(self, sample_rate: int = 16000, hop: int = 160, partitions: int = 40, max_delay_ms: float = 250.0,
                 margin: int = 2, step: float = 1.0, channels: int = 24, growth: int = 12, blocks: int = 2,
                 layers: int = 4, stride: int = 2, complex_masks: bool = False, fine_channels: int = 0,
                 noise_reduction_db: float = 60.0, residual_subtraction: float = 0.0):
        super().__init__(sample_rate, hop)
        if not 0.0 <= residual_subtraction <= 1.0:
            raise ValueError(f"residual_subtraction must be in 0..1, got {residual_subtraction}.")
        self.residual_subtraction = float(residual_subtraction)
        self.knobs = {"noise_reduction_db": dataclasses.replace(type(self).knobs["noise_reduction_db"],
                                                                default=float(noise_reduction_db))}
        self.linear = LinearAEC(sample_rate, hop, partitions, max_delay_ms, margin, step)
        self.net = DualMaskNet(hop + 1, channels, growth, blocks, layers, stride=stride, complex_masks=complex_masks,
                               fine_channels=fine_channels)
        self.register_buffer("window", torch.hann_window(2 * hop, periodic=True).sqrt(), persistent=False)

    @property
    def step_latency(self) -> int:
        return self.hop

    # ---- frames --------------------------------------------------------------------------------------------------
    def _spectra(self, signals: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """``signals`` ``(batch, k, blocks * N)`` with the half frame before them ``(batch, k, N)`` -> spectra
        ``(batch, k, N + 1, blocks)`` of the frames ``[block t - 1, block t]``: ``stft`` continued across blocks
        (the offline paths call ``stft`` and ``istft`` themselves)."""
        n = self.hop
        joined = torch.cat([previous, signals], dim=-1)
        frames = joined.unfold(-1, 2 * n, n) * self.window
        return torch.fft.rfft(frames, dim=-1).transpose(-1, -2)

    def _features(self, spectra: torch.Tensor) -> torch.Tensor:
        """``(batch, 3, bins, frames)`` complex (e, y, mic) -> ``(batch, 6, bins, frames)``."""
        return pseudo_complex(spectra).flatten(1, 2)

    def _overlap_add(self, spec: torch.Tensor, tail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output spectra ``(batch, bins, frames)`` -> samples ``(batch, frames * N)`` and the new tail."""
        n = self.hop
        frames = torch.fft.irfft(spec.transpose(-1, -2), 2 * n, dim=-1) * self.window  # (batch, frames, 2N)
        heads, tails = frames[..., :n], frames[..., n:]
        shifted = torch.cat([tail[:, None], tails[:, :-1]], dim=1)
        return (heads + shifted).flatten(1), tails[:, -1]

    def echo_stage(self, spectra: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``E * m_echo`` (complex with ``complex_masks``)."""
        out = spectra[:, 0] * masks[:, 0]
        if masks.shape[1] == 4:
            out = out * torch.polar(torch.ones_like(masks[:, 2]), torch.atan2(masks[:, 3], 1.0 + masks[:, 2]))
        return out

    def limit_noise(self, masks: torch.Tensor, knobs: Mapping[str, torch.Tensor], batch: int) -> torch.Tensor:
        """``masks`` ``(batch, heads, bins, frames)`` with the noise mask held at or above the knob's floor, read at
        each frame's last sample (frame ``t`` ends block ``t``, offline and stepping alike)."""
        value = knobs.get("noise_reduction_db")
        if value is None:
            return masks
        spec = self.knobs["noise_reduction_db"]
        per_frame = value.reshape(-1, value.shape[-1])[:, self.hop - 1 :: self.hop][:, : masks.shape[-1]]
        if bool((per_frame >= spec.maximum).all()):
            return masks
        floor = torch.where(per_frame >= spec.maximum, 0.0, 10 ** (-per_frame.float() / 20))
        floor = floor.expand(batch, -1)[:, None, :]  # (batch, 1 bin axis, frames)
        return torch.cat([masks[:, :1], torch.maximum(masks[:, 1:2], floor), masks[:, 2:]], dim=1)

    def masks_and_output(self, spectra: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.echo_stage(spectra, masks) * masks[:, 1]

    def load_narrower(self, state) -> None:
        """Start from a folder of a smaller model of the same widths as the same function: rotation heads at zero
        (a magnitude-mask folder), the fine stage's last layer at zero (a folder without it), and blocks past the
        folder's with zero transitions (a residual that adds nothing)."""
        own = self.state_dict()
        heads = {k: v for k, v in state.items() if k.startswith("net.heads.")}
        folder_blocks = len({k.split(".")[2] for k in state if k.startswith("net.blocks.")})

        def added(key: str) -> bool:  # a part the folder's model lacks
            return key.startswith("net.fine.") or (key.startswith(("net.blocks.", "net.transitions."))
                                                   and int(key.split(".")[2]) >= folder_blocks)

        wrong = [k for k, v in state.items() if k not in heads and (k not in own or own[k].shape != v.shape)]
        missing = [k for k in own if k not in state and not added(k)]
        if wrong or missing:
            raise ValueError("the folder does not match this model (only the heads may be narrower, and only the fine "
                             "stage and the last blocks may be missing).")
        state = dict(state)
        for key, value in heads.items():
            widened = torch.zeros_like(own[key])
            widened[: value.shape[0]] = value
            state[key] = widened
        last_fine = f"net.fine.{len(self.net.fine) - 1}." if self.net.fine is not None else None
        for key in own:
            if added(key):
                zero = key.startswith("net.transitions.") or (last_fine is not None and key.startswith(last_fine))
                state[key] = torch.zeros_like(own[key]) if zero else own[key]
        self.load_state_dict(state)

    # ---- Processor -----------------------------------------------------------------------------------------------
    def forward(self, x, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mic, ref = x
        length = mic.shape[-1]
        mics, refs = mic.reshape(-1, length), ref.reshape(-1, length)
        linear = [self.linear.linear_signals(m, r) for m, r in zip(mics, refs)]
        e = torch.stack([a for a, _ in linear])
        y = torch.stack([b for _, b in linear])
        out = self.from_linear(mics.float(), e, y, knobs)
        return out.to(mic.dtype).reshape(mic.shape)

    def from_linear(self, mic: torch.Tensor, e: torch.Tensor, y: torch.Tensor,
                    knobs: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Output ``(batch, time)`` from the microphone and the linear stage's ``e`` and ``y`` (each ``(batch, time)``),
        all frames at once: what stepping block by block gives. ``knobs``: per-sample values (none: no limit)."""
        spectra = self.subtract(stft(torch.stack([e, y, mic], dim=1), 2 * self.hop, self.hop, self.window))
        masks = self.limit_noise(self.net(self._features(spectra)), knobs or {}, mic.shape[0])
        return istft(self.masks_and_output(spectra, masks), 2 * self.hop, self.hop, self.window)

    def subtract(self, spectra: torch.Tensor, stats: dict | None = None) -> torch.Tensor:
        """``(batch, 3 or more, bins, frames)`` spectra (e, y, mic, ...) with ``E`` replaced by ``E - r w Y``
        frame by frame (``aec-linear``'s step 3, :func:`neuraudio.aec.linear.subtract_residual`; ``r`` the
        ``residual_subtraction`` setting, 0: unchanged). ``stats``: a stream's running statistics (``None``: from
        zeros, as a whole signal starts)."""
        if not self.residual_subtraction:
            return spectra
        if stats is None:
            stats = self._residual_stats(spectra.shape[0], spectra.device)
        with torch.no_grad():  # a function of the inputs alone
            e, y = spectra[:, 0], spectra[:, 1]
            py = y.real.square() + y.imag.square()
            frames = [subtract_residual(e[..., t], y[..., t], py[..., t], stats, self.residual_subtraction)
                      for t in range(spectra.shape[-1])]
            e2 = torch.stack(frames, dim=-1) if frames else e
        return torch.cat([e2[:, None], spectra[:, 1:]], dim=1)

    def _residual_stats(self, batch: int, device) -> dict:
        bins = self.hop + 1
        return {"cross": torch.zeros(batch, bins, dtype=torch.complex64, device=device),
                "y_power": torch.zeros(batch, bins, device=device)}

    def init_state(self, channels: int, max_samples: int, device) -> dict:
        return {"linear": [self.linear.init_state(1, max_samples, device) for _ in range(channels)],
                "previous": torch.zeros(channels, 3, self.hop, device=device),
                "tail": torch.zeros(channels, self.hop, device=device),
                "net": self.net.init_cache(channels, device),
                "residual": self._residual_stats(channels, device)}

    def step(self, x, state: dict, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mic, ref = x
        length = mic.shape[-1]
        mics, refs = mic.reshape(-1, length).float(), ref.reshape(-1, length).float()
        linear = [self.linear.linear_signals(m, r, s) for m, r, s in zip(mics, refs, state["linear"])]
        signals = torch.stack([torch.stack([e for e, _ in linear]), torch.stack([y for _, y in linear]), mics], dim=1)
        spectra = self.subtract(self._spectra(signals, state["previous"]), state["residual"])
        state["previous"].copy_(signals[..., -self.hop:])
        masks = self.limit_noise(self.net.step(self._features(spectra), state["net"]), knobs, mics.shape[0])
        out, tail = self._overlap_add(self.masks_and_output(spectra, masks), state["tail"])
        state["tail"].copy_(tail)
        return out.to(mic.dtype).reshape(mic.shape)

    def training_terms(self, mic: torch.Tensor, ref: torch.Tensor, target: torch.Tensor,
                       e: torch.Tensor | None = None, y: torch.Tensor | None = None,
                       echoless: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Estimated and target spectra on the model's frames, the masks and the waveforms, for crops
        ``(batch, 1, time)`` (whole hops). ``e``, ``y``: the linear stage's signals when precomputed. ``echoless``:
        the microphone without its echo (near end + noise); given, the terms also hold ``E * m_echo`` (``stage``)
        and its target (``stage_target``), so the echo mask is taught on its own: trained only through the product,
        the two masks stay one (they start equal and get equal gradients)."""
        mic, ref, target = (t.reshape(t.shape[0], -1).float() for t in (mic, ref, target))
        if e is None or y is None:
            with torch.no_grad():
                pairs = [self.linear.linear_signals(m, r) for m, r in zip(mic, ref)]
            e, y = torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])
        else:
            e, y = e.reshape(e.shape[0], -1).float(), y.reshape(y.shape[0], -1).float()
        n_fft, hop = 2 * self.hop, self.hop
        signals = [e, y, mic, target] + ([] if echoless is None else [echoless.reshape(mic.shape).float()])
        spectra = self.subtract(stft(torch.stack(signals, dim=1), n_fft, hop, self.window))
        masks = self.net(self._features(spectra[:, :3]))
        estimate = self.masks_and_output(spectra[:, :3], masks)
        wave, clean = istft(estimate, n_fft, hop, self.window), istft(spectra[:, 3], n_fft, hop, self.window)
        out = {"spectrum": estimate, "target": spectra[:, 3], "masks": masks, "wave": wave[:, None],
               "clean": clean[:, None], "input": mic[:, None]}
        if echoless is not None:
            out["stage"], out["stage_target"] = self.echo_stage(spectra[:, :3], masks), spectra[:, 4]
        return out
