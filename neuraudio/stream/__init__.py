"""The shared streaming backend (depends on torch only): STFT, framing, the Processor contract, chunked runs."""

from neuraudio.stream.framing import SampleQueue, StreamingISTFT, StreamingSTFT
from neuraudio.stream.processor import Knob, Processor, Stream, knob_trajectory
from neuraudio.stream.stft import istft, make_window, stft
from neuraudio.stream.stft_processor import STFTProcessor

__all__ = [
    "Knob", "Processor", "STFTProcessor", "SampleQueue", "Stream", "StreamingISTFT", "StreamingSTFT",
    "istft", "knob_trajectory", "make_window", "stft",
]
