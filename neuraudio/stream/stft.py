"""Causal STFT and ISTFT shared by every model, offline and streaming.

Framing is causal: the signal is left-padded with ``n_fft - hop`` zeros and frame ``k`` covers padded samples
``[k * hop, k * hop + n_fft)``, so it ends at original sample ``(k + 1) * hop - 1``. No reflect padding, no
centring: frame ``k`` only sees the past, and ``stft(x)`` equals, frame for frame, what
:class:`neuraudio.stream.framing.StreamingSTFT` emits when fed ``x`` in blocks of any size.

``istft`` is weighted overlap-add normalised by the hop-periodic sum of ``analysis * synthesis`` windows (the
steady-state normalisation: Hann at 50 % overlap sums to 1 everywhere, but other pairs swing, e.g. Hann at hop
``n_fft / 3``). It returns the ``n_frames * hop`` samples that every contributing frame has completed, which is the
input delayed by ``n_fft - hop`` samples when nothing is changed in between.

Example:
    >>> x = torch.randn(2, 48000)
    >>> spec = stft(x, n_fft=1024, hop=256)            # (2, 513, 187) complex
    >>> y = istft(spec, n_fft=1024, hop=256)            # (2, 47872)
    >>> torch.allclose(y[..., 768:], x[..., : 47872 - 768], atol=1e-5)
    True
"""

from __future__ import annotations

import math
from typing import Union

import torch

WindowSpec = Union[str, torch.Tensor]
WINDOWS = ("hann", "sqrt-hann", "vorbis", "rect")


def make_window(window: WindowSpec, n_fft: int, win_length: int | None = None, align: str = "center") -> torch.Tensor:
    """A float32 analysis window of length ``n_fft``.

    Args:
        window: ``"hann"`` (periodic), ``"sqrt-hann"``, ``"vorbis"`` (power-complementary at 50 % overlap),
            ``"rect"``, or a 1-D tensor of length ``win_length`` (or ``n_fft``).
        n_fft: FFT size = frame length in samples.
        win_length: support of the window; a window shorter than ``n_fft`` is zero-padded, centred in the frame
            (``align="center"``, torch's convention) or at its end (``align="right"``: a causal model's frame then
            ends where its window does, and the ISTFT of :class:`STFT` returns samples ``n_fft - win_length``
            earlier).

    Returns:
        Tensor of shape ``(n_fft,)``.
    """
    if n_fft < 2:
        raise ValueError(f"n_fft must be at least 2, got {n_fft}.")
    if isinstance(window, torch.Tensor):
        if window.ndim != 1:
            raise ValueError(f"a window tensor must be 1-D, got shape {tuple(window.shape)}.")
        win = window.detach().to(torch.float32)
        win_length = win.numel() if win_length is None else win_length
        if win.numel() != win_length:
            raise ValueError(f"the window tensor has {win.numel()} samples but win_length is {win_length}.")
    else:
        win_length = n_fft if win_length is None else win_length
        if not 1 <= win_length <= n_fft:
            raise ValueError(f"win_length must be in 1..n_fft={n_fft}, got {win_length}.")
        n = torch.arange(win_length, dtype=torch.float64)
        hann = 0.5 - 0.5 * torch.cos(2 * math.pi * n / win_length)
        if window == "hann":
            win = hann
        elif window == "sqrt-hann":
            win = hann.sqrt()
        elif window == "vorbis":
            win = torch.sin(0.5 * math.pi * torch.sin(math.pi * (n + 0.5) / win_length) ** 2)
        elif window == "rect":
            win = torch.ones(win_length, dtype=torch.float64)
        else:
            raise ValueError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)} or a tensor.")
        win = win.to(torch.float32)
    if win_length > n_fft:
        raise ValueError(f"win_length ({win_length}) cannot exceed n_fft ({n_fft}).")
    if align not in ("center", "right"):
        raise ValueError(f"align must be 'center' or 'right', got {align!r}.")
    left = (n_fft - win_length) // 2 if align == "center" else n_fft - win_length
    return torch.nn.functional.pad(win, (left, n_fft - win_length - left))


def ola_norm(analysis: torch.Tensor, synthesis: torch.Tensor, hop: int) -> torch.Tensor:
    """Hop-periodic sum of ``analysis * synthesis``: the steady-state gain of overlap-add at each phase of the hop.

    Returns a tensor of shape ``(hop,)``. Raises ``ValueError`` when it has a (near-)zero: that window/hop pair
    violates the NOLA condition and cannot be inverted.
    """
    n_fft = analysis.numel()
    if not 1 <= hop <= n_fft:
        raise ValueError(f"hop must be in 1..n_fft={n_fft}, got {hop}.")
    prod = (analysis.to(torch.float64) * synthesis.to(torch.float64))
    padded = torch.nn.functional.pad(prod, (0, (-n_fft) % hop))
    norm = padded.reshape(-1, hop).sum(0)
    if norm.abs().min() <= 1e-6 * norm.abs().max():
        raise ValueError(
            f"this window with hop {hop} violates the NOLA condition (its overlap-added square has zeros), "
            "so the ISTFT cannot invert it; use a smaller hop or another window."
        )
    return norm.to(torch.float32)


def frame_count(length: int, hop: int) -> int:
    """Number of complete causal frames in ``length`` samples (trailing samples short of a hop wait)."""
    return length // hop


def frames(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Causal frames ``(..., n_frames, n_fft)`` of ``x`` (``(..., time)``), left-padded by ``n_fft - hop`` zeros."""
    padded = torch.nn.functional.pad(x, (n_fft - hop, 0))
    n = frame_count(x.shape[-1], hop)
    return padded.unfold(-1, n_fft, hop)[..., :n, :]


def stft(
    x: torch.Tensor,
    n_fft: int,
    hop: int,
    window: WindowSpec = "hann",
    win_length: int | None = None,
) -> torch.Tensor:
    """Causal short-time Fourier transform.

    Shape:
        x: ``(..., time)`` real. Returns ``(..., n_fft // 2 + 1, n_frames)`` complex with
        ``n_frames = time // hop``.
    """
    win = make_window(window, n_fft, win_length).to(device=x.device, dtype=x.dtype)
    return torch.fft.rfft(frames(x, n_fft, hop) * win, dim=-1).transpose(-1, -2)


def overlap_add(frames_: torch.Tensor, hop: int) -> torch.Tensor:
    """Overlap-add ``(..., n_frames, n_fft)`` frames at ``hop``; returns ``(..., (n_frames - 1) * hop + n_fft)``."""
    n_frames, n_fft = frames_.shape[-2:]
    lead = frames_.shape[:-2]
    if n_fft % hop == 0:
        # Each frame is n_fft / hop slices of one hop; add the r-th slices of all frames, shifted by r hops.
        ratio = n_fft // hop
        sliced = frames_.reshape(*lead, n_frames, ratio, hop)
        out = frames_.new_zeros(*lead, n_frames + ratio - 1, hop)
        for r in range(ratio):
            out[..., r : r + n_frames, :] += sliced[..., r, :]
        return out.flatten(-2)
    length = (n_frames - 1) * hop + n_fft if n_frames else 0
    folded = torch.nn.functional.fold(
        frames_.reshape(-1, n_frames, n_fft).transpose(1, 2),
        output_size=(1, length),
        kernel_size=(1, n_fft),
        stride=(1, hop),
    )
    return folded.reshape(*lead, length)


def istft(
    spec: torch.Tensor,
    n_fft: int,
    hop: int,
    window: WindowSpec = "hann",
    win_length: int | None = None,
) -> torch.Tensor:
    """Inverse of :func:`stft` by weighted overlap-add with steady-state normalisation.

    Shape:
        spec: ``(..., n_fft // 2 + 1, n_frames)`` complex. Returns ``(..., n_frames * hop)``: the samples every
        contributing frame has completed, i.e. the STFT's input delayed by ``n_fft - hop`` samples.
    """
    if spec.shape[-2] != n_fft // 2 + 1:
        raise ValueError(f"spec has {spec.shape[-2]} bins but n_fft={n_fft} needs {n_fft // 2 + 1}.")
    win = make_window(window, n_fft, win_length).to(spec.device)
    norm = ola_norm(win, win, hop)
    n_frames = spec.shape[-1]
    time_frames = torch.fft.irfft(spec.transpose(-1, -2), n=n_fft, dim=-1) * win
    y = overlap_add(time_frames, hop)[..., : n_frames * hop]
    return y / norm.repeat(n_frames) if n_frames else y


def reanalyse(wave: torch.Tensor, n_fft: int, hop: int, window: WindowSpec = "hann") -> torch.Tensor:
    """The causal STFT of ``istft``'s output (delayed by ``n_fft - hop``) on the frames it came from: frame ``k`` of
    the result lines up with frame ``k`` of the spectrum that made ``wave``. The last ``ceil((n_fft - hop) / hop)``
    frames, which later frames would still complete, are left out."""
    delay = n_fft - hop
    advanced = torch.nn.functional.pad(wave[..., delay:], (0, delay))
    rebuilt = stft(advanced, n_fft, hop, window)
    return rebuilt[..., : rebuilt.shape[-1] - -(-delay // hop)]


class STFT(torch.nn.Module):
    """STFT and its inverse with the window and the overlap-add normalisation precomputed as buffers: no per-call
    window rebuild and no host synchronisation, so a CUDA graph can capture it.

    Args:
        n_fft, hop: frame length and advance in samples.
        window, win_length: as :func:`make_window`.
        center: ``False`` (default): causal framing, as :func:`stft` (``inverse`` returns the input delayed by
            :attr:`latency`). ``True``: frames centred on ``k * hop`` with ``n_fft // 2`` samples of padding on
            each side (``pad_mode``), equal to ``torch.stft(center=True)``; ``inverse`` returns the input aligned.
        pad_mode: ``"reflect"`` or ``"constant"`` (zeros), for ``center=True``.
        align: where a window shorter than ``n_fft`` sits in its frame (``"center"`` or ``"right"``).

    Shape:
        ``forward(x)``: ``(..., time)`` -> ``(..., n_fft // 2 + 1, frames)`` complex, with ``frames = time // hop``
        (causal) or ``time // hop + 1`` (centred). ``inverse(spec, length=None)``: -> ``(..., frames * hop)``
        (causal) or ``(..., length or (frames - 1) * hop)`` (centred).

    Example:
        >>> transform = STFT(1024, 256, center=True)
        >>> y = transform.inverse(transform(x), length=x.shape[-1])       # y == x
    """

    def __init__(self, n_fft: int, hop: int, window: WindowSpec = "hann", win_length: int | None = None,
                 center: bool = False, pad_mode: str = "reflect", align: str = "center"):
        super().__init__()
        if pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {pad_mode!r}.")
        self.n_fft, self.hop, self.center, self.pad_mode = int(n_fft), int(hop), bool(center), pad_mode
        win = make_window(window, n_fft, win_length, align)
        support = torch.nonzero(win).flatten()
        self.register_buffer("window", win, persistent=False)
        self.register_buffer("norm", ola_norm(win, win, hop), persistent=False)
        # Leading zeros of a right-aligned window: the causal inverse returns samples that much earlier.
        self.lead = int(support[0]) if support.numel() and align == "right" else 0

    @property
    def latency(self) -> int:
        """Samples by which the causal ``inverse(forward(x))`` lags ``x`` (0 with ``center=True``)."""
        return 0 if self.center else self.n_fft - self.hop - self.lead

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.center:
            half = self.n_fft // 2
            lead = x.shape[:-1]
            flat = x.reshape(-1, 1, x.shape[-1])
            x = torch.nn.functional.pad(flat, (half, half), mode=self.pad_mode).reshape(*lead, -1)
            framed = x.unfold(-1, self.n_fft, self.hop)
        else:
            framed = frames(x, self.n_fft, self.hop)
        return torch.fft.rfft(framed * self.window, dim=-1).transpose(-1, -2)

    def inverse(self, spec: torch.Tensor, length: int | None = None) -> torch.Tensor:
        if spec.shape[-2] != self.n_fft // 2 + 1:
            raise ValueError(f"spec has {spec.shape[-2]} bins but n_fft={self.n_fft} needs {self.n_fft // 2 + 1}.")
        n_frames = spec.shape[-1]
        framed = torch.fft.irfft(spec.transpose(-1, -2), n=self.n_fft, dim=-1) * self.window
        ola = overlap_add(framed, self.hop)
        if self.center:
            start, count = self.n_fft // 2, (n_frames - 1) * self.hop if length is None else length
        else:
            start, count = self.lead, n_frames * self.hop
        y = ola[..., start : start + count]
        if y.shape[-1] < count:  # a length past the frames: zeros
            y = torch.nn.functional.pad(y, (0, count - y.shape[-1]))
        if self.center:
            # The edges have fewer frames than the steady state: divide by the actual envelope, as torch.istft.
            envelope = overlap_add(self.window.pow(2).expand(n_frames, -1), self.hop)[start : start + count]
            envelope = torch.nn.functional.pad(envelope, (0, count - envelope.shape[-1]), value=1.0)
            return y / envelope.clamp_min(1e-11)
        index = (torch.arange(count, device=y.device) + start) % self.hop
        return y / self.norm[index]
