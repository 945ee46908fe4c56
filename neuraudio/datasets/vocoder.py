"""The vocoder layout: any audio under ``DIR/**`` (self-supervised: the target is the input). Files are split by a
seeded hash of their relative paths; items are ``{"audio": (1, L)}``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from neuraudio.datasets.common import Clip, DataError, audio_files, random_start, require_dir


class VocoderFolder:
    def __init__(self, root, sample_rate: int):
        self.root = require_dir(Path(root), "the vocoder data")
        self.clips = {str(p.relative_to(self.root)): Clip(p, sample_rate, 1) for p in audio_files(self.root, True)}
        if not self.clips:
            raise DataError(f"{self.root}: holds no audio files.")


class VocoderSet(Dataset):
    def __init__(self, folder: VocoderFolder, names: Sequence[str], crop: int, count: int | None = None,
                 random: bool = True):
        self.folder, self.names, self.crop, self.random = folder, list(names), crop, random
        self.count = count or len(self.names)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.random:
            clip = self.folder.clips[self.names[int(torch.randint(0, len(self.names), (1,)))]]
            return {"audio": clip.read(random_start(clip.frames, self.crop), self.crop)}
        return {"audio": self.folder.clips[self.names[index]].read(0, self.crop)}
