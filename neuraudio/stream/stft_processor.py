"""A Processor that works on causal STFT frames: analysis -> ``process_frames`` -> weighted overlap-add.

Subclasses implement ``process_frames`` (and ``init_frame_state`` when frames carry state); the offline
``forward`` and the streaming ``step`` both call it, so streaming equals offline by construction. Knobs reach
``process_frames`` once per frame: the value at the frame's last sample.

Latency: ``n_fft - hop`` when fed whole hops; a stream adds ``hop - 1``, so a stream reports ``n_fft - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from neuraudio.stream.framing import StreamingISTFT, StreamingSTFT
from neuraudio.stream.processor import Processor
from neuraudio.stream.stft import WindowSpec, istft, make_window, ola_norm, stft


@dataclass
class STFTStreamState:
    analysis: StreamingSTFT
    synthesis: StreamingISTFT
    frames: Any


class STFTProcessor(Processor):
    """STFT-domain processor; as it stands (``process_frames`` = identity) it reproduces its input, delayed.

    Args:
        sample_rate: Hz.
        n_fft: frame length and FFT size in samples.
        hop: frame advance in samples.
        window: analysis and synthesis window (``"hann"``, ``"sqrt-hann"``, ``"vorbis"``, ``"rect"`` or a tensor).
        win_length: window support when shorter than ``n_fft`` (centred).
    """

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop: int = 256, window: WindowSpec = "hann",
                 win_length: int | None = None):
        super().__init__(sample_rate, hop)
        self.n_fft = int(n_fft)
        self.register_buffer("window", make_window(window, n_fft, win_length), persistent=False)
        ola_norm(self.window, self.window, hop)

    @property
    def step_latency(self) -> int:
        return self.n_fft - self.hop

    def init_frame_state(self, lead: tuple[int, ...], device: torch.device) -> Any:
        """State carried from frame to frame for frames shaped ``(*lead, bins, frames)`` (``None``: no state)."""
        return None

    def process_frames(self, spec: torch.Tensor, state: Any, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Transform frames.

        Shape:
            spec: ``(..., channels, n_fft // 2 + 1, frames)`` complex; knobs: name -> ``(..., frames)``.
            Returns the same shape as ``spec``.
        """
        return spec

    def forward(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        spec = stft(x, self.n_fft, self.hop, self.window)
        state = self.init_frame_state(tuple(x.shape[:-1]), x.device)
        out = self.process_frames(spec, state, self._frame_knobs(knobs))
        return istft(out, self.n_fft, self.hop, self.window)

    def init_state(self, channels: int, max_samples: int, device: torch.device) -> STFTStreamState:
        window = self.window.to(device)
        return STFTStreamState(
            StreamingSTFT(self.n_fft, self.hop, window, lead=(channels,), max_block=max_samples, device=device),
            StreamingISTFT(self.n_fft, self.hop, window, lead=(channels,), device=device),
            self.init_frame_state((channels,), device),
        )

    def step(self, x: torch.Tensor, state: STFTStreamState, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        spec = state.analysis.process(x)
        out = self.process_frames(spec, state.frames, self._frame_knobs(knobs))
        return state.synthesis.process(out)

    def _frame_knobs(self, knobs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: value[..., self.hop - 1 :: self.hop] for name, value in knobs.items()}
