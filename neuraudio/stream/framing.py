"""Block adapters between a host's arbitrary block sizes and a model's fixed hop.

* :class:`SampleQueue`: a pre-allocated FIFO of ``(..., time)`` samples.
* :class:`StreamingSTFT`: blocks of any length in, complete causal frames out, equal to :func:`stft.stft`.
* :class:`StreamingISTFT`: frames in, completed samples out, equal to :func:`stft.istft`.

Each object owns its buffers (allocated once in the constructor for the declared maximum block) and
``reset()`` returns it to silence.
"""

from __future__ import annotations

import torch

from neuraudio.stream.stft import WindowSpec, make_window, ola_norm, overlap_add


class SampleQueue:
    """First-in first-out queue of samples with a fixed capacity.

    Shape:
        ``push(x)`` takes ``(*lead, n)``; ``pop(n)`` returns ``(*lead, n)`` (a new tensor).
    """

    def __init__(self, lead: tuple[int, ...], capacity: int, device="cpu", dtype=torch.float32, prefill: int = 0):
        if prefill > capacity:
            raise ValueError(f"prefill ({prefill}) exceeds the capacity ({capacity}).")
        self.buffer = torch.zeros(*lead, capacity, device=device, dtype=dtype)
        self.prefill = prefill
        self.count = prefill

    @property
    def capacity(self) -> int:
        return self.buffer.shape[-1]

    def reset(self) -> None:
        self.buffer.zero_()
        self.count = self.prefill

    def push(self, x: torch.Tensor) -> None:
        n = x.shape[-1]
        if self.count + n > self.capacity:
            raise RuntimeError(f"queue overflow: {self.count} + {n} samples exceed its capacity {self.capacity}.")
        self.buffer[..., self.count : self.count + n] = x
        self.count += n

    def pop(self, n: int) -> torch.Tensor:
        if n > self.count:
            raise RuntimeError(f"queue underflow: {n} samples asked, {self.count} held.")
        out = self.buffer[..., :n].clone()
        self.discard(n)
        return out

    def discard(self, n: int) -> None:
        """Drop the ``n`` oldest samples."""
        left = self.count - n
        if left:
            # Source and destination overlap when left > n, so copy through a temporary.
            self.buffer[..., :left] = self.buffer[..., n : self.count].clone()
        self.count = left


class StreamingSTFT:
    """Causal STFT fed block by block; emits each frame as soon as its last sample arrives.

    Args:
        n_fft, hop, window, win_length: as :func:`neuraudio.stream.stft.stft`.
        lead: leading shape of the blocks (e.g. ``(channels,)``).
        max_block: the largest block ``process`` will be given.

    Shape:
        ``process(block)``: ``(*lead, n)`` with ``0 <= n <= max_block`` -> ``(*lead, n_fft // 2 + 1, k)`` complex,
        ``k`` frames completed by this block (possibly 0).
    """

    def __init__(self, n_fft: int, hop: int, window: WindowSpec = "hann", win_length: int | None = None,
                 lead: tuple[int, ...] = (1,), max_block: int = 4096, device="cpu"):
        self.n_fft, self.hop = n_fft, hop
        self.window = make_window(window, n_fft, win_length).to(device)
        ola_norm(self.window, self.window, hop)  # refuse NOLA-violating pairs here too
        self.max_block = max_block
        self.queue = SampleQueue(lead, n_fft + max_block, device, prefill=n_fft - hop)
        self._empty = torch.zeros(*lead, n_fft // 2 + 1, 0, dtype=torch.complex64, device=device)

    def reset(self) -> None:
        self.queue.reset()

    def process(self, block: torch.Tensor) -> torch.Tensor:
        if block.shape[-1] > self.max_block:
            raise ValueError(f"block of {block.shape[-1]} samples exceeds max_block={self.max_block}.")
        q = self.queue
        q.push(block)
        k = (q.count - (self.n_fft - self.hop)) // self.hop
        if k <= 0:
            return self._empty
        frames = q.buffer[..., : (k - 1) * self.hop + self.n_fft].unfold(-1, self.n_fft, self.hop)
        spec = torch.fft.rfft(frames * self.window, dim=-1).transpose(-1, -2)
        q.discard(k * self.hop)
        return spec


class StreamingISTFT:
    """Weighted overlap-add fed frame by frame; emits ``hop`` completed samples per frame.

    Shape:
        ``process(spec)``: ``(*lead, n_fft // 2 + 1, k)`` complex -> ``(*lead, k * hop)``.
    """

    def __init__(self, n_fft: int, hop: int, window: WindowSpec = "hann", win_length: int | None = None,
                 lead: tuple[int, ...] = (1,), device="cpu"):
        self.n_fft, self.hop = n_fft, hop
        self.window = make_window(window, n_fft, win_length).to(device)
        self.inv_norm = 1.0 / ola_norm(self.window, self.window, hop).to(device)
        self.tail = torch.zeros(*lead, n_fft - hop, device=device)

    def reset(self) -> None:
        self.tail.zero_()

    def process(self, spec: torch.Tensor) -> torch.Tensor:
        k = spec.shape[-1]
        if k == 0:
            return self.tail[..., :0].clone()
        frames = torch.fft.irfft(spec.transpose(-1, -2), n=self.n_fft, dim=-1) * self.window
        y = frames[..., 0, :] if k == 1 else overlap_add(frames, self.hop)
        y[..., : self.n_fft - self.hop] += self.tail
        self.tail.copy_(y[..., k * self.hop :])
        return (y[..., : k * self.hop].reshape(*y.shape[:-1], k, self.hop) * self.inv_norm).flatten(-2)
