"""File-level entry points of the public API: run a Processor over audio files with bounded memory."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from neuraudio.audio import AudioError, AudioWriter, audio_info, convert_channels, iter_audio_blocks
from neuraudio.stream.processor import Processor


@dataclass
class FileReport:
    """What :func:`process_file` did, for the user to read."""

    input: str
    output: str
    file_rate: int
    model_rate: int
    file_channels: int
    model_channels: int
    seconds: float        # duration of the audio
    elapsed: float        # wall-clock seconds
    clipped: int          # samples clipped when writing an integer format

    @property
    def resampled(self) -> bool:
        return self.file_rate != self.model_rate

    @property
    def real_time_factor(self) -> float:
        return self.elapsed / self.seconds if self.seconds else 0.0


class _Resampler:
    """Streaming soxr resampler over ``(channels, n)`` tensors (identity when the rates match)."""

    def __init__(self, rate_in: int, rate_out: int, channels: int):
        self.stream = None
        if rate_in != rate_out:
            import soxr

            self.stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality="VHQ")

    def __call__(self, block: torch.Tensor, last: bool = False) -> torch.Tensor:
        if self.stream is None:
            return block
        out = self.stream.resample_chunk(np.ascontiguousarray(block.numpy().T), last=last)
        return torch.from_numpy(np.ascontiguousarray(out.reshape(-1, block.shape[0]).T))


@torch.inference_mode()
def process_files(model: Processor, inputs: Sequence, outputs: Sequence, *,
                  knobs: Mapping[str, float] | None = None, bit_depth: str = "24", block_frames: int = 65536,
                  device="cpu", progress: Callable[[int], None] | None = None) -> FileReport:
    """Process audio files through a Processor, block by block: one input file per model input (``model.inputs``,
    in order) and one output file, or one per stem (``model.stems``, in order; ``None`` skips a stem).

    Every input is resampled to the model's rate (soxr, streaming) and, for an input with a fixed channel count,
    mixed down or up to it; the outputs have the first input's length and rate. Memory stays bounded whatever the
    files' length (a non-causal model streams with its chunk and context as latency). The outputs are written
    atomically and never over an input; on any error none of them is left.

    Args:
        knobs: knob values (constant over the file).
        bit_depth: ``"16"``, ``"24"`` or ``"32f"``.
        progress: called with the number of frames of the first input consumed after each block.
    """
    started = time.perf_counter()
    specs = model.input_channels()
    if len(inputs) != len(specs):
        raise AudioError(f"{type(model).__name__} takes {len(specs)} input file(s) ({', '.join(specs)}), "
                         f"got {len(inputs)}.")
    stems = list(model.stems) or [None]
    if len(outputs) != len(stems):
        what = f"one per stem ({', '.join(model.stems)})" if model.stems else "one"
        raise AudioError(f"{type(model).__name__} writes {len(stems)} output file(s), {what}; got {len(outputs)}.")
    infos = [audio_info(path) for path in inputs]
    for path, info in zip(inputs, infos):
        if info.frames == 0:
            raise AudioError(f"{path}: the file holds no samples.")
    if all(out is None for out in outputs):
        raise AudioError("no output file to write.")
    for out in [o for o in outputs if o is not None]:
        for path in inputs:
            if Path(out).exists() and Path(out).resolve() == Path(path).resolve():
                raise AudioError(f"{out}: refusing to overwrite an input file.")
    first = infos[0]
    # channels per input: the file's own for an input of any channel count, else the model's
    channels = [info.channels if want is None else want for info, want in zip(infos, specs.values())]
    out_channels = model.output_channels(channels[0])
    model = model.to(device)
    stream = model.stream(block_size=block_frames * 2, device=device, channels=channels[0])
    stream.set_knobs(**dict(knobs or {}))
    to_model = [_Resampler(info.sample_rate, model.sample_rate, ch) for info, ch in zip(infos, channels)]
    from_model = [_Resampler(model.sample_rate, first.sample_rate, out_channels) for _ in stems]
    skip = stream.latency          # model-rate samples of stream delay to drop
    written = 0

    with contextlib.ExitStack() as files:
        writers = [None if out is None else
                   files.enter_context(AudioWriter(out, first.sample_rate, out_channels, bit_depth, inputs=inputs))
                   for out in outputs]

        def emit(y: torch.Tensor, last: bool = False) -> None:
            nonlocal skip, written
            if skip:
                cut = min(skip, y.shape[-1])
                y, skip = y[..., cut:], skip - cut
            y = y.cpu()
            parts = {i: from_model[i](y[i] if model.stems else y, last=last) for i, w in enumerate(writers) if w}
            keep = min(min(p.shape[-1] for p in parts.values()), first.frames - written)
            for i, part in parts.items():
                writers[i].write(part[:, :keep])
            written += keep

        def run(xs: list[torch.Tensor], last: bool = False) -> None:
            for start in range(0, max(x.shape[-1] for x in xs), block_frames * 2):
                emit(stream.process(*(x[:, start : start + block_frames * 2].to(device) for x in xs)))
            if last:
                empty = torch.zeros(len(stems), out_channels, 0) if model.stems else torch.zeros(out_channels, 0)
                emit(empty, last=True)

        consumed = 0
        # each input in blocks of the same duration (a reference at 48 kHz beside a 16 kHz microphone reads 3x the
        # frames), rounded up, so no input's end is left unread when the first one runs out
        readers = [iter_audio_blocks(path, -(-block_frames * info.sample_rate // first.sample_rate))
                   for path, info in zip(inputs, infos)]
        pending = [torch.zeros(ch, 0) for ch in channels]  # model-rate samples not yet aligned across inputs
        while True:
            blocks = [next(reader, None) for reader in readers]
            if blocks[0] is None:
                break
            for i, (path, block) in enumerate(zip(inputs, blocks)):
                if block is None:  # a shorter secondary input: silence after its end
                    block = torch.zeros(infos[i].channels,
                                        -(-blocks[0].shape[-1] * infos[i].sample_rate // first.sample_rate))
                pending[i] = torch.cat([pending[i], to_model[i](convert_channels(block, channels[i], str(path)))], -1)
            ready = min(p.shape[-1] for p in pending)
            run([p[:, :ready] for p in pending])
            pending = [p[:, ready:] for p in pending]
            consumed += blocks[0].shape[-1]
            if progress:
                progress(consumed)
        tails = [torch.cat([p, r(torch.zeros(ch, 0), last=True)], -1) for p, r, ch in zip(pending, to_model, channels)]
        length = tails[0].shape[-1] + stream.latency
        tails = [torch.nn.functional.pad(t[:, :length], (0, max(0, length - t.shape[-1]))) for t in tails]
        run(tails, last=True)
        if written < first.frames:  # resampler rounding: at most a few samples
            for writer in writers:
                if writer is not None:
                    writer.write(torch.zeros(out_channels, first.frames - written))
            written = first.frames

    return FileReport(str(inputs[0]), ", ".join(str(o) for o in outputs if o is not None), first.sample_rate,
                      model.sample_rate, first.channels, channels[0], first.duration, time.perf_counter() - started,
                      sum(w.clipped for w in writers if w is not None))


def process_file(model: Processor, input_path, output_path, *, knobs: Mapping[str, float] | None = None,
                 bit_depth: str = "24", block_frames: int = 65536, device="cpu",
                 progress: Callable[[int], None] | None = None) -> FileReport:
    """:func:`process_files` for a single-input model without stems: one file in, one file out."""
    return process_files(model, [input_path], [output_path], knobs=knobs, bit_depth=bit_depth,
                         block_frames=block_frames, device=device, progress=progress)
