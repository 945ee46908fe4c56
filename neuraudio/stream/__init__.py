"""The shared streaming backend (depends on torch only): STFT, mel, delay, framing, the Processor contract,
non-causal models in chunks."""

from neuraudio.stream.chunked import ChunkedProcessor, ChunkedRunner
from neuraudio.stream.delay import DelayTracker, estimate_delay
from neuraudio.stream.framing import SampleQueue, StreamingISTFT, StreamingSTFT
from neuraudio.stream.mel import MelSpectrogram, mel_filterbank
from neuraudio.stream.processor import Knob, Processor, Stream, knob_trajectory
from neuraudio.stream.stft import STFT, istft, make_window, stft
from neuraudio.stream.stft_processor import STFTProcessor

__all__ = [
    "STFT", "ChunkedProcessor", "ChunkedRunner", "DelayTracker", "Knob", "MelSpectrogram", "Processor",
    "STFTProcessor", "SampleQueue", "Stream", "StreamingISTFT", "StreamingSTFT", "estimate_delay", "istft",
    "knob_trajectory", "make_window", "mel_filterbank", "stft",
]
