"""Audio files in and out: reading (any format libsndfile reads), block-wise reading, atomic writing, resampling
and channel conversion, with validation that names the file and the problem.

Tensors are float32 ``(channels, time)`` in nominal range [-1, 1]; sample rates are in Hz.

Clipping policy: integer formats (16- and 24-bit PCM) hold [-1, 1); samples beyond are clipped to the format's
range and the number of clipped samples is returned by :func:`write_audio` (and warned about by the CLI).
32-bit float files are written unclipped.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import soundfile as sf
import torch

BIT_DEPTHS = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
LOSSY_SUBTYPES = {".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}  # the bit depth does not apply to these
MAX_CHANNELS = 64


class AudioError(Exception):
    """A problem with a user's audio file or signal, stated in one sentence naming the file."""


@dataclass(frozen=True)
class AudioInfo:
    path: str
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.frames / self.sample_rate


def _open(path) -> sf.SoundFile:
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file.")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file.")
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{path}: not a readable audio file ({err}).") from None


def audio_info(path) -> AudioInfo:
    """Format facts of a file without reading its samples."""
    with _open(path) as f:
        return AudioInfo(str(path), f.format, f.subtype, f.samplerate, f.channels, f.frames)


def _check_header(path, f: sf.SoundFile, sample_rates: Sequence[int] | None, max_channels: int) -> None:
    if f.frames == 0:
        raise AudioError(f"{path}: the file holds no samples.")
    if not 1 <= f.channels <= max_channels:
        raise AudioError(f"{path}: {f.channels} channels are not supported (1 to {max_channels} are).")
    if sample_rates is not None and f.samplerate not in sample_rates:
        rates = ", ".join(str(r) for r in sample_rates)
        raise AudioError(f"{path}: sample rate {f.samplerate} Hz is not accepted here (accepted: {rates} Hz).")


def _check_finite(path, data: np.ndarray, offset: int = 0) -> None:
    if not np.isfinite(data).all():
        bad = int(np.argmin(np.isfinite(data).all(axis=1))) + offset
        raise AudioError(f"{path}: sample {bad} is NaN or infinite.")


def read_audio(path, *, sample_rate: int | None = None, channels: int | None = None,
               sample_rates: Sequence[int] | None = None, max_channels: int = MAX_CHANNELS) -> tuple[torch.Tensor, int]:
    """Read a whole file.

    Args:
        path: any format libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ...).
        sample_rate: resample to this rate (soxr, very high quality); ``None`` keeps the file's rate.
        channels: convert to this channel count (see :func:`convert_channels`); ``None`` keeps the file's.
        sample_rates: refuse files whose rate is not one of these (before any resampling).

    Returns:
        ``(audio, rate)``: float32 ``(channels, time)`` and the rate in Hz.
    """
    with _open(path) as f:
        _check_header(path, f, sample_rates, max_channels)
        data = f.read(dtype="float32", always_2d=True)
        rate = f.samplerate
    _check_finite(path, data)
    audio = torch.from_numpy(np.ascontiguousarray(data.T))
    if channels is not None:
        audio = convert_channels(audio, channels, str(path))
    if sample_rate is not None and sample_rate != rate:
        audio, rate = resample(audio, rate, sample_rate), sample_rate
    return audio, rate


def iter_audio_blocks(path, block_frames: int, *, sample_rates: Sequence[int] | None = None,
                      max_channels: int = MAX_CHANNELS) -> Iterator[torch.Tensor]:
    """Read a file block by block with bounded memory: yields float32 ``(channels, n)``, ``n <= block_frames``."""
    if block_frames < 1:
        raise ValueError(f"block_frames must be at least 1, got {block_frames}.")
    with _open(path) as f:
        _check_header(path, f, sample_rates, max_channels)
        offset = 0
        for block in f.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
            _check_finite(path, block, offset)
            offset += block.shape[0]
            yield torch.from_numpy(np.ascontiguousarray(block.T))


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".w64", ".rf64", ".caf")


def audio_files_under(folder) -> list[Path]:
    """Audio files (by suffix) anywhere under ``folder``, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def convert_channels(audio: torch.Tensor, channels: int, name: str = "signal") -> torch.Tensor:
    """Mix down to mono (mean), or up from mono (copy); other conversions are refused.

    Shape: ``(..., in_channels, time)`` -> ``(..., channels, time)``.
    """
    have = audio.shape[-2]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(dim=-2, keepdim=True)
    if have == 1:
        return audio.expand(*audio.shape[:-2], channels, audio.shape[-1]).contiguous()
    raise AudioError(f"{name}: cannot convert {have} channels to {channels} (only to mono, or from mono).")


def resample(audio: torch.Tensor, orig_rate: int, new_rate: int, quality: str = "VHQ") -> torch.Tensor:
    """Resample ``(channels, time)`` float32 with soxr (linear phase, very high quality by default)."""
    if orig_rate == new_rate:
        return audio
    import soxr

    data = soxr.resample(audio.detach().cpu().numpy().T, orig_rate, new_rate, quality=quality)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(data, dtype=np.float32).reshape(-1, audio.shape[0]).T))


def creation_mask() -> int:
    """The process's umask (read from /proc where it can be, so the process-wide setting is never changed)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_default_mode(path, folder: bool = False) -> None:
    """Give a file made by ``tempfile`` (mode 0600, folders 0700) the mode a plain ``open``/``mkdir`` would have."""
    os.chmod(path, (0o777 if folder else 0o666) & ~creation_mask())


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


class AudioWriter:
    """Write a WAV, FLAC, OGG (Vorbis) or MP3 file block by block, atomically: samples go to a temporary file in the
    target folder, which is renamed over ``path`` only by ``close()``; on an error (or ``abort()``) the temporary
    file is removed and ``path`` is untouched. The file gets the mode a plain write would give it (umask applied).

    Args:
        path: ``.wav``, ``.flac``, ``.ogg`` or ``.mp3``.
        sample_rate: Hz; channels: channel count.
        bit_depth: ``"16"``, ``"24"`` or ``"32f"`` (FLAC: 16 or 24; ignored by the lossy OGG and MP3, which are
            clipped to [-1, 1] like integer formats).
        inputs: files that must never be overwritten (the inputs of the run).

    Use as a context manager: ``with AudioWriter(path, 48000, 2) as w: w.write(block)``.
    """

    def __init__(self, path, sample_rate: int, channels: int, bit_depth: str = "24", inputs: Sequence = ()):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in WRITE_FORMATS:
            raise AudioError(f"{self.path}: can only write {', '.join(WRITE_FORMATS)} files.")
        if bit_depth not in BIT_DEPTHS:
            raise AudioError(f"{self.path}: bit depth {bit_depth!r} is not one of {', '.join(BIT_DEPTHS)}.")
        if suffix == ".flac" and bit_depth == "32f":
            raise AudioError(f"{self.path}: FLAC holds 16- or 24-bit integers, not 32-bit float.")
        for other in inputs:
            if self.path.exists() and _same_file(self.path, other):
                raise AudioError(f"{self.path}: refusing to overwrite an input file.")
        if not self.path.parent.is_dir():
            raise AudioError(f"{self.path}: the folder {self.path.parent} does not exist.")
        self.subtype = LOSSY_SUBTYPES.get(suffix, BIT_DEPTHS[bit_depth])
        self.clipped = 0
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        except OSError as err:
            raise AudioError(f"{self.path}: cannot write in the folder {self.path.parent} ({err.strerror}).") from None
        os.close(fd)
        try:
            give_default_mode(self._tmp)
            self._file = sf.SoundFile(self._tmp, "w", int(sample_rate), int(channels), self.subtype,
                                      format=WRITE_FORMATS[suffix])
        except (OSError, sf.LibsndfileError, RuntimeError) as err:
            os.remove(self._tmp)
            raise AudioError(f"{self.path}: cannot write this file ({err}).") from None

    def write(self, block: torch.Tensor) -> None:
        """Append ``(channels, n)`` samples."""
        data = block.detach().to("cpu", torch.float32).numpy().T
        if not np.isfinite(data).all():
            self.abort()
            raise AudioError(f"{self.path}: refusing to write NaN or infinite samples.")
        if self.subtype != "FLOAT":
            # Integer PCM holds [-1, 1 - 1 LSB] (lossy formats decode to [-1, 1]); libsndfile would clip too, but
            # we count what is clipped.
            bits = {"PCM_16": 16, "PCM_24": 24}.get(self.subtype)
            top = 1.0 - 2.0 ** (1 - bits) if bits else 1.0
            over = (data > top) | (data < -1.0)
            if over.any():
                self.clipped += int(over.sum())
                data = np.clip(data, -1.0, top)
        self._file.write(data)

    def close(self) -> None:
        try:
            self._file.close()
            os.replace(self._tmp, self.path)
        except OSError as err:
            self.abort()
            raise AudioError(f"{self.path}: could not be written ({err.strerror}).") from None

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)

    def __enter__(self) -> "AudioWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_audio(path, audio: torch.Tensor, sample_rate: int, *, bit_depth: str = "24", inputs: Sequence = ()) -> int:
    """Write ``(channels, time)`` audio to a WAV, FLAC, OGG or MP3 file atomically; returns the number of clipped
    samples."""
    if audio.ndim != 2:
        raise AudioError(f"{path}: audio to write must be shaped (channels, time), got {tuple(audio.shape)}.")
    with AudioWriter(path, sample_rate, audio.shape[0], bit_depth, inputs) as writer:
        writer.write(audio)
    return writer.clipped


@dataclass(frozen=True)
class Levels:
    """Levels of a file in dBFS: sample peak, RMS over all channels, and the noise floor (10th percentile of the
    RMS of 50 ms windows)."""

    peak_dbfs: float
    rms_dbfs: float
    floor_dbfs: float


def measure_levels(path, progress=None) -> Levels:
    """Peak, RMS and noise floor of a file, read block by block (bounded memory); ``progress(frames_done)``."""
    info = audio_info(path)
    window = max(1, round(0.05 * info.sample_rate))
    peak, total = 0.0, 0.0
    window_ms, carry = [], torch.zeros(info.channels, 0)
    for block in iter_audio_blocks(path, window * 64):
        peak = max(peak, float(block.abs().max()))
        total += float(block.double().pow(2).sum())
        block = torch.cat([carry, block], dim=-1)
        whole = block.shape[-1] // window * window
        window_ms.append(block[:, :whole].reshape(info.channels, -1, window).double().pow(2).mean(dim=(0, 2)))
        carry = block[:, whole:]
        if progress:
            progress(min(info.frames, sum(w.numel() for w in window_ms) * window + carry.shape[-1]))
    ms = torch.cat(window_ms) if window_ms else torch.zeros(0, dtype=torch.float64)
    if carry.shape[-1] or not ms.numel():
        ms = torch.cat([ms, carry.double().pow(2).mean().reshape(1)])
    floor = float(ms.quantile(0.1).sqrt())
    rms = math.sqrt(total / (info.frames * info.channels))
    return Levels(level_dbfs(peak), level_dbfs(rms), level_dbfs(floor))


def level_dbfs(peak_or_rms: float) -> float:
    """Amplitude to dBFS (``-inf`` for silence)."""
    return 20 * math.log10(peak_or_rms) if peak_or_rms > 0 else -math.inf
