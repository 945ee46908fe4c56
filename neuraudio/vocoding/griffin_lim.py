"""Griffin-Lim: audio from a magnitude spectrogram alone, by alternating projections, with the momentum of the
fast variant (Perraudin, Balazs & Sondergaard, 2013); and from a mel spectrogram through the filterbank's
non-negative pseudo-inverse. The floor a neural vocoder must clear.

    phase_0 = 0 (or given);  repeat: X = STFT(ISTFT(|S| e^{i phase}));  phase <- angle(X + m (X - X_prev))

The Processor face (``neuraudio.load("griffin-lim")``) is analysis -> resynthesis, audio in and audio out: the
mel spectrogram of the input, then Griffin-Lim. It is non-causal (each frame's phase depends on its neighbours) and
runs through :class:`neuraudio.stream.chunked.ChunkedProcessor`; ``synthesize(mel)`` takes mel frames from outside
(e.g. a TTS model).

Example:
    >>> vocoder = neuraudio.load("griffin-lim")
    >>> audio = vocoder.synthesize(mel)                 # mel: (..., 80, frames), natural-log amplitude
"""

from __future__ import annotations

from typing import Mapping

import torch

from neuraudio.stream.chunked import ChunkedProcessor
from neuraudio.stream.mel import MelSpectrogram
from neuraudio.stream.stft import STFT, overlap_add


def mel_to_magnitude(mel: torch.Tensor, inverse: torch.Tensor, log: bool = True) -> torch.Tensor:
    """Linear-frequency magnitude ``(..., n_fft // 2 + 1, frames)`` from mel bands ``(..., n_mels, frames)``,
    through ``inverse``, the filterbank's pseudo-inverse (``torch.linalg.pinv(filters)``), clamped to be
    non-negative."""
    bands = torch.exp(mel) if log else mel
    return torch.matmul(inverse.to(bands.dtype), bands).clamp_min(0.0)


def consistency_projector(transform: STFT, n_frames: int, length: int | None):
    """``S -> STFT(ISTFT(S))`` for spectra laid out frame-major, ``(..., frames, bins)``: the projection a
    Griffin-Lim iteration makes, with the window envelope computed once rather than per call. Frame-major layout
    keeps every FFT and elementwise pass on contiguous memory (faster per iteration than going through
    ``transform``'s ``(..., bins, frames)`` layout; ``benchmarks/vocoder.py speed`` measures the whole vocoder).
    Needs ``transform.center``."""
    n_fft, hop, window, half = transform.n_fft, transform.hop, transform.window, transform.n_fft // 2
    count = (n_frames - 1) * hop if length is None else length
    envelope = overlap_add(window.pow(2).expand(n_frames, -1), hop)[half : half + count]
    envelope = torch.nn.functional.pad(envelope, (0, count - envelope.shape[-1]), value=1.0)
    reciprocal = 1.0 / envelope.clamp_min(1e-11)

    def project(spec: torch.Tensor) -> torch.Tensor:
        y = overlap_add(torch.fft.irfft(spec, n=n_fft, dim=-1).mul_(window), hop)[..., half : half + count]
        if y.shape[-1] < count:  # a length past the frames: zeros
            y = torch.nn.functional.pad(y, (0, count - y.shape[-1]))
        y = y * reciprocal
        lead = y.shape[:-1]
        padded = torch.nn.functional.pad(y.reshape(-1, 1, count), (half, half), mode=transform.pad_mode)
        return torch.fft.rfft(padded.reshape(*lead, -1).unfold(-1, n_fft, hop) * window, dim=-1)

    return project


def fast_griffin_lim(magnitude: torch.Tensor, angles: torch.Tensor, transform: STFT, n_iter: int = 32,
                     momentum: float = 0.99, length: int | None = None) -> torch.Tensor:
    """Unit-modulus phase factors ``e^{i phase}`` after ``n_iter`` fast Griffin-Lim iterations (with momentum)
    started from ``angles``, for a magnitude ``(..., bins, frames)``."""
    if n_iter < 0 or not 0 <= momentum < 1:
        raise ValueError(f"need n_iter >= 0 and 0 <= momentum < 1, got {n_iter} and {momentum}.")
    if not n_iter:
        return angles
    if not transform.center:  # the general path, through the transform's own layout
        previous = torch.zeros_like(angles)
        for _ in range(n_iter):
            rebuilt = transform(transform.inverse(magnitude * angles, length=length))
            accelerated = rebuilt + momentum * (rebuilt - previous) if momentum else rebuilt
            previous = rebuilt
            angles = torch.sgn(accelerated)
        return angles
    magnitude_tf = magnitude.transpose(-1, -2).contiguous()
    angles = angles.transpose(-1, -2).contiguous()
    project = consistency_projector(transform, magnitude_tf.shape[-2], length)
    previous = None
    for _ in range(n_iter):
        rebuilt = project(magnitude_tf * angles)
        # rebuilt + m (rebuilt - previous); the first step's previous is zero, which only scales it
        if previous is None or not momentum:
            accelerated = rebuilt
        else:  # on the real view: complex lerp is slower on CPU
            accelerated = torch.view_as_complex(torch.lerp(torch.view_as_real(previous), torch.view_as_real(rebuilt),
                                                           1.0 + momentum))
        previous = rebuilt
        angles = torch.sgn(accelerated)
    return angles.transpose(-1, -2)


def griffin_lim(magnitude: torch.Tensor, transform: STFT, n_iter: int = 32, momentum: float = 0.99,
                length: int | None = None) -> torch.Tensor:
    """Audio ``(..., length)`` whose STFT magnitude approaches ``magnitude`` (``(..., bins, frames)``), by fast
    Griffin-Lim with a zero initial phase (deterministic)."""
    start = torch.ones_like(magnitude, dtype=torch.complex64 if magnitude.dtype != torch.float64 else torch.complex128)
    angles = fast_griffin_lim(magnitude, start, transform, n_iter, momentum, length)
    return transform.inverse(magnitude * angles, length=length)


class GriffinLim(ChunkedProcessor):
    """Mel analysis -> Griffin-Lim resynthesis (classical DSP, no weights).

    Args:
        sample_rate: Hz.
        n_fft, hop, n_mels, fmin, fmax: the mel analysis (hann window, centred frames, slaney mel, log amplitude).
        n_iter, momentum: Griffin-Lim iterations and momentum.
        context_frames: frames of audio either side of a chunk that the iterations see.
        chunk_seconds: audio per window (rounded to whole hops).
    """

    task = "vocoder"

    def __init__(self, sample_rate: int = 22050, n_fft: int = 1024, hop: int = 256, n_mels: int = 80,
                 fmin: float = 0.0, fmax: float | None = 8000.0, n_iter: int = 32, momentum: float = 0.99,
                 context_frames: int = 16, chunk_seconds: float = 4.0):
        chunk = max(hop, round(chunk_seconds * sample_rate / hop) * hop)
        super().__init__(sample_rate, chunk, context_frames * hop)
        self.n_iter, self.momentum = int(n_iter), float(momentum)
        self.mel = MelSpectrogram(sample_rate, n_fft, hop, n_mels, fmin, fmax, center=True, log=True)
        self.transform = STFT(n_fft, hop, center=True)
        self.register_buffer("inverse", torch.linalg.pinv(self.mel.filters.double()).float(), persistent=False)

    def synthesize(self, mel: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Audio ``(..., length)`` (default ``(frames - 1) * hop``) from log-amplitude mel frames
        ``(..., n_mels, frames)`` in this model's mel settings."""
        if mel.shape[-2] != self.mel.n_mels:
            raise ValueError(f"mel has {mel.shape[-2]} bands but this vocoder uses {self.mel.n_mels}.")
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.training):
            magnitude = mel_to_magnitude(mel, self.inverse)
            return griffin_lim(magnitude, self.transform, self.n_iter, self.momentum, length)

    def analyse(self, audio: torch.Tensor) -> torch.Tensor:
        """Log mel ``(..., n_mels, frames)`` of ``audio``: the features ``synthesize`` expects."""
        return self.mel(audio)

    def process_window(self, x: torch.Tensor, knobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.synthesize(self.mel(x), length=x.shape[-1])
