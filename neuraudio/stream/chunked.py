"""Non-causal models over signals of any length: :class:`ChunkedProcessor`, the base every non-causal model
derives from (the same windows offline and streaming), and :class:`ChunkedRunner`, an offline runner in overlapping
cross-faded chunks with bounded memory.

ChunkedRunner:

The signal is cut into chunks of ``chunk`` samples starting every ``chunk - crossfade`` samples. The model sees each
chunk with ``context`` samples of real neighbouring audio on both sides (zeros only beyond the signal's edges); the
context part of its output is discarded. The kept parts are blended with triangular cross-fade weights
``w(t) = min(1, (t + 1) / (crossfade + 1), (chunk - t) / (crossfade + 1))``, normalised by their sum, so the blend is
exact wherever neighbouring chunks agree. A model whose receptive field reaches at most ``context`` samples either
way therefore gives exactly its single-pass output; a longer one gives seams that the cross-fade softens.

Chunks are batched through the model on its device; the output is accumulated on the host and handed back as soon
as no later chunk can change it, so input and output can stream from and to disk.

Example:
    >>> runner = ChunkedRunner(model_fn, chunk=10 * 44100, context=44100, crossfade=44100)
    >>> y = runner.run(x)                                    # x: (channels, time)
    >>> for out in runner.run_blocks(iter_audio_blocks(path, 65536)): writer.write(out)
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Mapping

import torch

from neuraudio.stream.processor import Processor


class ChunkedRunner:
    """Run ``fn`` over a long signal in overlapping chunks.

    Args:
        fn: non-causal model, ``(batch, channels, chunk + 2 * context)`` -> ``(batch, out_channels, same length)``,
            output aligned with input.
        chunk: samples kept from each pass.
        context: samples of neighbouring input each side of a chunk that the model sees but whose output is dropped.
        crossfade: samples shared by consecutive chunks (``0 <= crossfade < chunk``).
        batch_size: chunks per call of ``fn``.
        device: where ``fn`` runs; inputs are moved there and outputs back to the CPU.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], chunk: int, context: int = 0, crossfade: int = 0,
                 batch_size: int = 4, device="cpu"):
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1 sample, got {chunk}.")
        if not 0 <= crossfade < chunk:
            raise ValueError(f"crossfade must be in 0..chunk-1={chunk - 1}, got {crossfade}.")
        if context < 0 or batch_size < 1:
            raise ValueError("context must be >= 0 and batch_size >= 1.")
        self.fn, self.chunk, self.context, self.crossfade = fn, chunk, context, crossfade
        self.stride = chunk - crossfade
        self.batch_size, self.device = batch_size, torch.device(device)
        t = torch.arange(chunk, dtype=torch.float32)
        ramp = crossfade + 1.0
        self.weight = torch.minimum(torch.ones(chunk), torch.minimum((t + 1) / ramp, (chunk - t) / ramp))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: ``(channels, time)`` -> ``(out_channels, time)``."""
        return torch.cat(list(self.run_blocks([x])), dim=-1)

    def run_blocks(self, blocks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Consume ``(channels, n)`` blocks; yield ``(out_channels, m)`` output blocks, in order, total = total in."""
        chunk, ctx, stride = self.chunk, self.context, self.stride
        buf, buf_start = None, -ctx          # input held, and the absolute index of its first sample
        acc = wsum = None                    # weighted output sum and weight sum, from absolute index `emitted`
        emitted, total, next_start = 0, 0, 0
        pending: list[int] = []              # starts of chunks whose input is complete, not yet run
        exhausted = False
        it = iter(blocks)
        while True:
            block = next(it, None)
            if block is None:
                exhausted = True
            else:
                if buf is None:
                    buf = torch.zeros(block.shape[0], ctx, dtype=torch.float32)
                buf = torch.cat([buf, block.to("cpu", torch.float32)], dim=-1)
                total += block.shape[-1]
            if buf is None:
                return
            # Chunks whose whole window (with right context) is available, or all remaining at the end.
            while next_start < total and (exhausted or next_start + chunk + ctx <= total):
                pending.append(next_start)
                next_start += stride
            if pending and (exhausted or len(pending) >= self.batch_size):
                for i in range(0, len(pending), self.batch_size):
                    starts = pending[i : i + self.batch_size]
                    windows = torch.stack([self._window(buf, buf_start, s) for s in starts])
                    with torch.no_grad():
                        out = self.fn(windows.to(self.device)).to("cpu", torch.float32)
                    if acc is None:
                        acc = torch.zeros(out.shape[1], 0)
                        wsum = torch.zeros(0)
                    for s, y in zip(starts, out):
                        end = s + chunk - emitted
                        if end > acc.shape[-1]:
                            acc = torch.cat([acc, acc.new_zeros(acc.shape[0], end - acc.shape[-1])], dim=-1)
                            wsum = torch.cat([wsum, wsum.new_zeros(end - wsum.shape[-1])])
                        acc[:, s - emitted : end] += y[:, ctx : ctx + chunk] * self.weight
                        wsum[s - emitted : end] += self.weight
                pending.clear()
                # Everything before the next chunk's start is final.
                final = min(next_start, total) - emitted
                if final > 0:
                    yield acc[:, :final] / wsum[:final]
                    acc, wsum, emitted = acc[:, final:], wsum[final:], emitted + final
                # Drop input no later chunk will read.
                drop = next_start - ctx - buf_start
                if drop > 0:
                    buf, buf_start = buf[:, drop:], buf_start + drop
            if exhausted:
                return

    def _window(self, buf: torch.Tensor, buf_start: int, start: int) -> torch.Tensor:
        lo = start - self.context - buf_start
        hi = lo + self.chunk + 2 * self.context
        window = buf[:, lo:hi]
        if window.shape[-1] < hi - lo:  # past the end of the signal: zeros
            window = torch.nn.functional.pad(window, (0, hi - lo - window.shape[-1]))
        return window


class ChunkedProcessor(Processor):
    """Base of non-causal models: a :class:`Processor` that runs ``process_window`` on windows of ``chunk`` samples
    with ``context`` samples of real audio on each side, offline and streaming alike.

    A subclass implements ``process_window(x, knobs)``: non-causal, output aligned with its input and of the same
    length (``x`` is a tuple for several inputs; knobs are per-sample tensors of the window). The base gives:

    * ``hop = chunk``; ``latency = context + crossfade`` (the right context a chunk waits for, and the overlap it is
      blended over); a stream adds ``chunk - 1`` unless the host promises whole chunks (``block_multiple=chunk``);
    * ``forward`` and ``step`` cut the same windows (signal positions ``[k * chunk - 2 * context, (k + 1) * chunk)``,
      zeros before the start), so streaming equals offline, and the output equals one pass of ``process_window``
      over the whole signal wherever the model's reach is at most ``context`` samples each way (with
      ``crossfade=0``); a model that reaches further makes seams, which ``crossfade`` samples of linear blending
      between consecutive windows soften;
    * bounded work per step (one window per chunk); offline ``process`` holds the signal and its output, and
      ``neuraudio.process_file`` streams from and to disk.

    * optional **shifts** (the "shift trick" of Demucs, deterministic here): :meth:`set_shifts` makes every window
      run ``shifts`` times, delayed by offsets spread evenly over ``[0, max_shift)`` (at most the context, so the kept
      part never sees the end of the window move), each output moved back and the passes averaged. A model whose
      frames or strides sit on a fixed grid gives slightly different errors at each offset, and the average is
      usually better, for ``shifts`` times the work; offline and streaming take the same passes.

    Args:
        sample_rate: Hz.
        chunk: samples each window contributes (the hop).
        context: samples of neighbouring audio each side of a chunk that the model sees but whose output is
            discarded.
        crossfade: samples over which consecutive windows' outputs are blended (``0..min(context, chunk)``).
    """

    MAX_SHIFT_SECONDS = 0.5

    def __init__(self, sample_rate: int, chunk: int, context: int, crossfade: int = 0):
        super().__init__(sample_rate, hop=chunk)
        if context < 0:
            raise ValueError(f"context must be >= 0 samples, got {context}.")
        if not 0 <= crossfade <= min(context, chunk):
            raise ValueError(f"crossfade must be in 0..min(context, chunk) = {min(context, chunk)}, got {crossfade}.")
        self.context, self.crossfade = int(context), int(crossfade)
        self.shift_offsets: list[int] = [0]
        # weight of the newer window across the blend (rising; the older window gets 1 - it)
        self.register_buffer("fade_in", (torch.arange(self.crossfade) + 0.5) / max(1, self.crossfade),
                             persistent=False)

    def process_window(self, x, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    @property
    def shifts(self) -> int:
        return len(self.shift_offsets)

    @property
    def max_shift(self) -> int:
        """Samples: the largest offset :meth:`set_shifts` spreads its passes over (the context, at most 0.5 s)."""
        return min(self.context, round(self.MAX_SHIFT_SECONDS * self.sample_rate))

    def set_shifts(self, shifts: int) -> "ChunkedProcessor":
        """Run each window ``shifts`` times at offsets ``round(k * max_shift / shifts)``, ``k = 0..shifts-1``, and
        average (class docstring); 1 (the default) is one plain pass. Returns the model."""
        if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 1:
            raise ValueError(f"shifts must be a whole number >= 1, got {shifts!r}.")
        if shifts > 1 and self.max_shift < shifts:
            raise ValueError(f"{type(self).__name__} has {self.context} samples of context: too little to shift "
                             f"{shifts} times.")
        self.shift_offsets = [round(k * self.max_shift / shifts) for k in range(shifts)]
        return self

    def _run_window(self, window: list[torch.Tensor], knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`process_window`, once or averaged over the shifted passes."""
        run = lambda w, k: self.process_window(w[0] if len(w) == 1 else tuple(w), k)  # noqa: E731
        if self.shifts == 1:
            return run(window, knobs)
        total = None
        for offset in self.shift_offsets:  # delay the window by `offset`, run, move the output back
            delayed = [torch.nn.functional.pad(w, (offset, 0))[..., : w.shape[-1]] for w in window]
            delayed_knobs = {n: torch.cat([v[..., :1].expand(*v.shape[:-1], offset), v], dim=-1)[..., : v.shape[-1]]
                             for n, v in knobs.items()}
            y = run(delayed, delayed_knobs)
            y = torch.nn.functional.pad(y[..., offset:], (0, offset))
            total = y if total is None else total + y
        return total / self.shifts

    @property
    def step_latency(self) -> int:
        return self.context + self.crossfade

    def _windows(self, xs: list[torch.Tensor], knobs: Mapping[str, torch.Tensor], tail):
        """Run every window of ``xs`` (each ``(..., channels, history + k * chunk)``, ``history = 2 * context``
        samples of the past first); returns the chunks they keep, the first ``crossfade`` samples of each blended
        with the previous window's ``tail``, and the new tail."""
        ctx, chunk, fade = self.context, self.hop, self.crossfade
        outputs = []
        for start in range(0, xs[0].shape[-1] - 2 * ctx, chunk):
            window = [x[..., start : start + chunk + 2 * ctx] for x in xs]
            knob_window = {n: v[..., start : start + chunk + 2 * ctx] for n, v in knobs.items()}
            y = self._run_window(window, knob_window)
            kept = y[..., ctx - fade : ctx + chunk]
            if fade:
                if tail is None:
                    tail = torch.zeros_like(kept[..., :fade])
                fade_in = self.fade_in.to(kept.device, kept.dtype)
                head = tail * (1 - fade_in) + kept[..., :fade] * fade_in
                kept, tail = torch.cat([head, kept[..., fade:chunk]], dim=-1), kept[..., chunk:]
            outputs.append(kept)
        return torch.cat(outputs, dim=-1), tail

    def forward(self, x, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        xs = [x] if torch.is_tensor(x) else list(x)
        history = 2 * self.context
        padded = [torch.nn.functional.pad(i, (history, 0)) for i in xs]
        knobs = {n: torch.cat([v[..., :1].expand(*v.shape[:-1], history), v], dim=-1) for n, v in knobs.items()}
        return self._windows(padded, knobs, None)[0]

    def init_state(self, channels: int, max_samples: int, device) -> dict:
        history = 2 * self.context
        shapes = [channels if want is None else want for want in self.input_channels().values()]
        return {"inputs": [torch.zeros(ch, history, device=device) for ch in shapes],
                "knobs": None, "tail": None}

    def step(self, x, state: dict, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        xs = [x] if torch.is_tensor(x) else list(x)
        history = 2 * self.context
        if state["knobs"] is None:  # the first block: the knobs' past is their first value
            state["knobs"] = {n: v[..., :1].expand(*v.shape[:-1], history) for n, v in knobs.items()}
        joined = [torch.cat([h.to(i.dtype), i], dim=-1) for h, i in zip(state["inputs"], xs)]
        joined_knobs = {n: torch.cat([state["knobs"][n], v], dim=-1) for n, v in knobs.items()}
        y, state["tail"] = self._windows(joined, joined_knobs, state["tail"])
        state["inputs"] = [j[..., j.shape[-1] - history :] for j in joined]
        state["knobs"] = {n: v[..., v.shape[-1] - history :] for n, v in joined_knobs.items()}
        return y
