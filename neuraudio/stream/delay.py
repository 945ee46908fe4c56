"""Delay between two signals: generalised cross-correlation with phase transform (GCC-PHAT), once or tracked
block by block (echo cancellation's bulk delay, capture alignment).

PHAT divides the cross-spectrum by its magnitude, so every frequency votes equally and the correlation peak is
sharp for broadband signals whatever their colour (speech, music, room echoes); ``phat=False`` gives the plain
cross-correlation (what a click or a sweep needs to be found to the sample with its polarity).

Example:
    >>> lag, inverted, peak = estimate_delay(loudspeaker, microphone, max_delay=3200)
    >>> tracker = DelayTracker(max_delay=3200)
    >>> for ref_block, mic_block in blocks: delay = tracker.update(ref_block, mic_block)
"""

from __future__ import annotations

import numpy as np
import torch


def estimate_delay(reference: torch.Tensor, recording: torch.Tensor, max_delay: int,
                   phat: bool = True) -> tuple[int, bool, float]:
    """The lag ``0..max_delay`` (samples by which ``recording`` follows ``reference``) of the cross-correlation
    peak of two mono signals ``(time,)``, whether the peak is negative (inverted polarity), and its height
    (with PHAT, near 1 for a clean pure delay, near 0 for unrelated signals)."""
    if max_delay < 0:
        raise ValueError(f"max_delay must be >= 0, got {max_delay}.")
    n = max(reference.numel(), recording.numel()) + max_delay
    size = 1 << (n - 1).bit_length()
    cross = torch.fft.rfft(recording.double(), size) * torch.conj(torch.fft.rfft(reference.double(), size))
    if phat:
        cross = cross / cross.abs().clamp_min(1e-12)
    corr = torch.fft.irfft(cross, size)[: max_delay + 1]
    lag = int(corr.abs().argmax())
    return lag, bool(corr[lag] < 0), float(corr[lag].abs())


class DelayTracker:
    """Streaming GCC-PHAT: the delay of ``mic`` behind ``ref``, updated every ``hop`` samples from an exponentially
    smoothed cross-spectrum of the last ``window`` samples (so a slowly drifting delay, e.g. two clocks 100 ppm
    apart, is followed).

    An update is three FFTs of ``window`` samples (the microphone's, the reference's, the correlation's), taken with
    NumPy: at 16384 points PyTorch's CPU FFT took 2.2-2.8 times NumPy's in single calls on one thread (its real
    transforms at every size tried, its complex ones at powers of two; ``benchmarks/fft_backends.py``). With
    ``spread`` (default) they run on three successive calls, one each, on copies of both signals taken at the update
    time: a real-time caller's worst block then carries one FFT instead of three (``aec-linear``'s 10 ms blocks with
    a 16384-sample window: the update blocks were its 99th-percentile step time). The estimate an update gives is
    then out two calls later; a caller that falls two hops behind gets every pending stage at once.

    Args:
        max_delay: largest delay looked for, in samples.
        window: analysis length in samples (at least ``2 * max_delay``; default the next power of two).
        hop: samples between updates.
        smoothing: weight of the past cross-spectrum at each update (0..1).
        min_peak: a PHAT peak below this (unrelated or silent signals) leaves the estimate as it was.
        spread: one FFT per call (above).
    """

    def __init__(self, max_delay: int, window: int | None = None, hop: int = 1024, smoothing: float = 0.9,
                 min_peak: float = 0.05, spread: bool = True):
        window = window or 1 << (2 * max_delay + hop - 1).bit_length()
        if window < 2 * max_delay or hop < 1 or not 0 <= smoothing < 1:
            raise ValueError("need window >= 2 * max_delay, hop >= 1 and 0 <= smoothing < 1.")
        self.max_delay, self.window, self.hop, self.smoothing, self.min_peak = max_delay, window, hop, smoothing, min_peak
        self.spread = bool(spread)
        self.taper = torch.hann_window(window, dtype=torch.float32).numpy()
        self.reset()

    def reset(self) -> None:
        self._ref, self._mic = torch.zeros(self.window), torch.zeros(self.window)
        self._new_ref, self._new_mic = [], []  # blocks fed since the windows were last brought up to date
        self.cross = np.zeros(self.window // 2 + 1, dtype=np.complex64)  # the smoothed cross-spectrum
        self.pending = 0
        self.stage, self.snapshot, self.spectrum = 0, None, None  # an update in progress (``spread``)
        self.delay: int | None = None
        self.peak = 0.0

    @property
    def ref(self) -> torch.Tensor:
        """The reference's last ``window`` samples, oldest first."""
        self._flush()
        return self._ref

    @property
    def mic(self) -> torch.Tensor:
        """The microphone's last ``window`` samples, oldest first."""
        self._flush()
        return self._mic

    def _flush(self) -> None:
        """The windows brought up to date with the blocks fed since: one concatenation per update, not one per block
        (at 10 ms blocks and a 16384-sample window, copying both windows on every block cost more than the
        arithmetic)."""
        if self._new_ref:
            self._ref = torch.cat([self._ref, *self._new_ref])[-self.window :]
            self._mic = torch.cat([self._mic, *self._new_mic])[-self.window :]
            self._new_ref, self._new_mic = [], []

    def _advance(self) -> None:
        """One stage of an update: the microphone's spectrum (taking both signals' copies), the reference's, then
        the smoothed cross-spectrum's correlation and its peak."""
        if self.stage == 0:
            self.pending -= self.hop
            self._flush()
            self.snapshot = self._ref.numpy() * self.taper
            self.spectrum = np.fft.rfft(self._mic.numpy() * self.taper).astype(np.complex64, copy=False)
        elif self.stage == 1:
            self.spectrum = self.spectrum * np.conj(np.fft.rfft(self.snapshot)).astype(np.complex64, copy=False)
        else:
            self.cross = self.smoothing * self.cross + (1 - self.smoothing) * self.spectrum
            phat = self.cross / np.maximum(np.abs(self.cross), 1e-20)
            corr = np.fft.irfft(phat, self.window)[: self.max_delay + 1]
            lag = int(np.argmax(corr))
            peak = float(corr[lag])
            if peak >= self.min_peak:
                self.delay, self.peak = lag, peak
            self.snapshot = self.spectrum = None
        self.stage = (self.stage + 1) % 3

    def update(self, ref: torch.Tensor, mic: torch.Tensor) -> int | None:
        """Feed the next samples of both signals (``(n,)`` each); returns the current estimate (``None`` until the
        first confident one)."""
        n = ref.numel()
        # the tracker's own buffers stay on the CPU (a few FFTs per second; the signals may be on a GPU)
        # copies: a caller's blocks may be views of buffers it reuses
        self._new_ref.append(ref.detach().flatten().to("cpu", torch.float32, copy=True))
        self._new_mic.append(mic.detach().flatten().to("cpu", torch.float32, copy=True))
        self.pending += n
        if self.spread and self.pending < 2 * self.hop:
            if self.stage or self.pending >= self.hop:
                self._advance()
            return self.delay
        while self.stage or self.pending >= self.hop:  # every stage due, now
            self._advance()
        return self.delay
