"""File-level entry points of the public API: run a Processor over an audio file with bounded memory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

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
def process_file(model: Processor, input_path, output_path, *, knobs: Mapping[str, float] | None = None,
                 bit_depth: str = "24", block_frames: int = 65536, device="cpu",
                 progress: Callable[[int], None] | None = None) -> FileReport:
    """Process an audio file through a single-input, single-output Processor, block by block.

    The file is resampled to the model's rate and back (soxr, streaming) and, for a model with a fixed channel
    count, mixed or up-mixed to it; the output has the input's length and rate. Memory stays bounded whatever the
    file's length. The output is written atomically and never over the input.

    Args:
        knobs: knob values (constant over the file).
        bit_depth: ``"16"``, ``"24"`` or ``"32f"``.
        progress: called with the number of input frames consumed after each block.
    """
    started = time.perf_counter()
    info = audio_info(input_path)
    if info.frames == 0:
        raise AudioError(f"{input_path}: the file holds no samples.")
    if Path(output_path).exists() and Path(output_path).resolve() == Path(input_path).resolve():
        raise AudioError(f"{output_path}: refusing to overwrite an input file.")
    channels = info.channels if model.in_channels == 1 else model.in_channels
    out_channels = channels if model.in_channels == 1 else model.out_channels
    model = model.to(device)
    stream = model.stream(block_size=block_frames * 2, device=device, channels=channels)
    stream.set_knobs(**dict(knobs or {}))
    to_model = _Resampler(info.sample_rate, model.sample_rate, channels)
    from_model = _Resampler(model.sample_rate, info.sample_rate, out_channels)
    skip = stream.latency          # model-rate samples of stream delay to drop
    model_in = 0                   # model-rate samples fed
    written = 0

    with AudioWriter(output_path, info.sample_rate, out_channels, bit_depth, inputs=[input_path]) as writer:
        def emit(y: torch.Tensor, last: bool = False) -> None:
            nonlocal skip, written
            if skip:
                cut = min(skip, y.shape[-1])
                y, skip = y[:, cut:], skip - cut
            y = from_model(y.cpu(), last=last)[:, : info.frames - written]
            writer.write(y)
            written += y.shape[-1]

        def run(x: torch.Tensor, last: bool = False) -> None:
            nonlocal model_in
            for part in torch.split(x, block_frames * 2, dim=-1) if x.shape[-1] else [x]:
                model_in += part.shape[-1]
                emit(stream.process(part.to(device)), last=False)
            if last:
                emit(torch.zeros(out_channels, 0), last=True)

        consumed = 0
        for block in iter_audio_blocks(input_path, block_frames):
            run(to_model(convert_channels(block, channels, str(input_path))))
            consumed += block.shape[-1]
            if progress:
                progress(consumed)
        tail = to_model(torch.zeros(channels, 0), last=True)
        flush = torch.zeros(channels, stream.latency)
        run(torch.cat([tail, flush], dim=-1), last=True)
        if written < info.frames:  # resampler rounding: at most a few samples
            writer.write(torch.zeros(out_channels, info.frames - written))
            written = info.frames

    return FileReport(str(input_path), str(output_path), info.sample_rate, model.sample_rate, info.channels,
                      channels, info.duration, time.perf_counter() - started, writer.clipped)
