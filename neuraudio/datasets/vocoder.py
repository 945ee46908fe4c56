"""The vocoder layout: any audio under ``DIR/**`` (self-supervised: the target is the input). Files are split by a
seeded hash of their relative paths; items are ``{"audio": (1, L)}``; random crops start on a multiple of ``hop``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from neuraudio.datasets.common import Clip, CropSet, DataError, audio_files, require_dir


class VocoderFolder:
    def __init__(self, root, sample_rate: int):
        self.root = require_dir(Path(root), "the vocoder data")
        self.clips = {str(p.relative_to(self.root)): Clip(p, sample_rate, 1) for p in audio_files(self.root, True)}
        if not self.clips:
            raise DataError(f"{self.root}: holds no audio files.")


class VocoderSet(CropSet):
    """Items ``{"audio": (1, crop)}``: random crops, or (``random=False``, validation) each file's first ``crop``."""

    def __init__(self, folder: VocoderFolder, names: Sequence[str], crop: int, count: int | None = None,
                 random: bool = True, hop: int = 1):
        super().__init__(names, crop, count, random)
        self.folder, self.hop = folder, int(hop)

    def frames(self, name: str) -> int:
        return self.folder.clips[name].frames

    def read(self, name: str, start: int, length: int) -> dict[str, torch.Tensor]:
        start -= start % self.hop  # crops aligned to the hop
        return {"audio": self.folder.clips[name].read(start, length)}
