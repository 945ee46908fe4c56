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

    Args:
        max_delay: largest delay looked for, in samples.
        window: analysis length in samples (at least ``2 * max_delay``; default the next power of two).
        hop: samples between updates.
        smoothing: weight of the past cross-spectrum at each update (0..1).
        min_peak: a PHAT peak below this (unrelated or silent signals) leaves the estimate as it was.
    """

    def __init__(self, max_delay: int, window: int | None = None, hop: int = 1024, smoothing: float = 0.9,
                 min_peak: float = 0.05):
        window = window or 1 << (2 * max_delay + hop - 1).bit_length()
        if window < 2 * max_delay or hop < 1 or not 0 <= smoothing < 1:
            raise ValueError("need window >= 2 * max_delay, hop >= 1 and 0 <= smoothing < 1.")
        self.max_delay, self.window, self.hop, self.smoothing, self.min_peak = max_delay, window, hop, smoothing, min_peak
        self.taper = torch.hann_window(window, dtype=torch.float64)
        self.reset()

    def reset(self) -> None:
        self.ref = torch.zeros(self.window, dtype=torch.float64)
        self.mic = torch.zeros(self.window, dtype=torch.float64)
        self.cross = torch.zeros(self.window // 2 + 1, dtype=torch.complex128)
        self.pending = 0
        self.delay: int | None = None
        self.peak = 0.0

    def update(self, ref: torch.Tensor, mic: torch.Tensor) -> int | None:
        """Feed the next samples of both signals (``(n,)`` each); returns the current estimate (``None`` until the
        first confident one)."""
        n = ref.numel()
        # the tracker's own buffers stay on the CPU (a few FFTs per second; the signals may be on a GPU)
        self.ref = torch.cat([self.ref[n:], ref.detach().double().flatten().cpu()])[-self.window :]
        self.mic = torch.cat([self.mic[n:], mic.detach().double().flatten().cpu()])[-self.window :]
        self.pending += n
        while self.pending >= self.hop:
            self.pending -= self.hop
            spec = torch.fft.rfft(self.mic * self.taper) * torch.conj(torch.fft.rfft(self.ref * self.taper))
            self.cross = self.smoothing * self.cross + (1 - self.smoothing) * spec
            phat = self.cross / self.cross.abs().clamp_min(1e-20)
            corr = torch.fft.irfft(phat, self.window)[: self.max_delay + 1]
            lag = int(corr.argmax())
            peak = float(corr[lag])
            if peak >= self.min_peak:
                self.delay, self.peak = lag, peak
        return self.delay
