"""Pieces every layout's dataset shares: folder errors, audio clips read by range, the seeded split, crops.

Datasets here are plain ``torch.utils.data.Dataset`` objects (no Lightning): items are dicts of float32 tensors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from neuraudio.audio import AUDIO_SUFFIXES, AudioError, audio_files_under, audio_info, read_audio



class DataError(Exception):
    """A training folder does not match its layout; the message names the file and what is wrong."""


def require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: {what} folder is missing.")
    return path


def audio_files(folder: Path, recursive: bool = False) -> list[Path]:
    if recursive:
        return audio_files_under(folder)
    return sorted(p for p in Path(folder).glob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def find_audio(folder: Path, stem: str) -> Path | None:
    """The file ``folder/stem.<any audio suffix>``, if there is exactly one."""
    hits = [p for p in Path(folder).glob(f"{stem}.*") if p.suffix.lower() in AUDIO_SUFFIXES]
    if len(hits) > 1:
        raise DataError(f"{folder}: several files named {stem}.* ({', '.join(p.name for p in hits)}); keep one.")
    return hits[0] if hits else None


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err}).") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: must hold a JSON object.")
    return data


class Clip:
    """An audio file read by sample range, at ``sample_rate``.

    A file already at that rate is read from disk range by range (bounded memory); a file at another rate is
    resampled once (soxr) and kept in memory.
    """

    def __init__(self, path: Path, sample_rate: int, channels: int | None = None):
        try:
            info = audio_info(path)
        except AudioError as err:
            raise DataError(str(err)) from None
        if info.frames == 0:
            raise DataError(f"{path}: the file holds no samples.")
        self.path, self.sample_rate, self.channels = Path(path), sample_rate, channels or info.channels
        self._memory = None
        if info.sample_rate != sample_rate:
            self._memory, _ = read_audio(path, sample_rate=sample_rate, channels=self.channels)
            self.frames = self._memory.shape[-1]
        else:
            self.frames = info.frames
            self._file_channels = info.channels

    def read(self, start: int = 0, length: int | None = None) -> torch.Tensor:
        """``(channels, length)`` float32; zeros past the end."""
        length = self.frames - start if length is None else length
        if self._memory is not None:
            out = self._memory[:, start : start + length]
        else:
            data = sf.read(str(self.path), frames=length, start=start, dtype="float32", always_2d=True)[0]
            if not np.isfinite(data).all():
                raise DataError(f"{self.path}: holds NaN or infinite samples near sample {start}.")
            out = torch.from_numpy(np.ascontiguousarray(data.T))
            if out.shape[0] != self.channels:
                from neuraudio.audio import convert_channels

                out = convert_channels(out, self.channels, str(self.path))
        if out.shape[-1] < length:
            out = torch.nn.functional.pad(out, (0, length - out.shape[-1]))
        return out


def _rank(name: str, seed: int) -> int:
    return int(hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()[:12], 16)


def split_names(names: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic train/validation split by a seeded hash of each name (independent of listing order).

    With two or more names both sides get at least one.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    ordered = sorted(names, key=lambda n: _rank(n, seed))
    n_val = round(val_fraction * len(ordered))
    if len(ordered) >= 2 and val_fraction > 0:
        n_val = min(max(n_val, 1), len(ordered) - 1)
    val = sorted(ordered[:n_val])
    return sorted(ordered[n_val:]), val


def random_start(length: int, crop: int) -> int:
    return int(torch.randint(0, max(1, length - crop + 1), (1,)))


class CropSet(Dataset):
    """Items read from named recordings of a folder: the base of every layout's dataset but the effects one.

    ``random=True`` (training): each item is a random name, cropped at a random start to ``crop`` samples;
    ``count`` items make an epoch (default: one per name). ``random=False`` (validation): item ``i`` is name
    ``i``, from its start, ``crop`` samples long, or whole with ``crop=None``.

    Subclasses implement ``frames(name)`` and ``read(name, start, length) -> dict`` of tensors.
    """

    def __init__(self, names: Sequence[str], crop: int | None, count: int | None = None, random: bool = True):
        if random and crop is None:
            raise ValueError("random crops need a crop length.")
        self.names, self.crop, self.random = list(names), crop, random
        self.count = count or len(self.names)

    def __len__(self) -> int:
        return self.count if self.random else len(self.names)

    def frames(self, name: str) -> int:
        raise NotImplementedError

    def read(self, name: str, start: int, length: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.random:
            name = self.names[int(torch.randint(0, len(self.names), (1,)))]
            return self.read(name, random_start(self.frames(name), self.crop), self.crop)
        name = self.names[index]
        return self.read(name, 0, self.frames(name) if self.crop is None else self.crop)
