"""The echo-cancellation layout: ``DIR/<clip>/{mic,ref,target}.wav`` (mic = near end + echo of ref + noise;
target = what should remain). Clips are split by a seeded hash of their names; crops are aligned across the three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from neuraudio.datasets.common import Clip, CropSet, DataError, find_audio, require_dir

PARTS = ("mic", "ref", "target")


class EchoFolder:
    def __init__(self, root, sample_rate: int):
        self.root = require_dir(Path(root), "the echo-cancellation data")
        self.clips: dict[str, dict[str, Clip]] = {}
        for clip in sorted(p for p in self.root.iterdir() if p.is_dir()):
            parts = {}
            for part in PARTS:
                path = find_audio(clip, part)
                if path is None:
                    raise DataError(f"{clip}: {part}.wav is missing (a clip needs mic, ref and target).")
                parts[part] = Clip(path, sample_rate, channels=1)
            lengths = {c.frames for c in parts.values()}
            if max(lengths) - min(lengths) > sample_rate // 100:
                raise DataError(f"{clip}: mic, ref and target differ in length ({sorted(lengths)} samples).")
            self.clips[clip.name] = parts
        if not self.clips:
            raise DataError(f"{self.root}: no clip folders (DIR/<clip>/{{mic,ref,target}}.wav).")

    def frames(self, name: str) -> int:
        return min(c.frames for c in self.clips[name].values())


class EchoSet(CropSet):
    """Items ``{"mic", "ref", "target"}``, each ``(1, L)``; ``crop=None`` gives whole clips (validation)."""

    def __init__(self, folder: EchoFolder, names: Sequence[str], crop: int | None, count: int | None = None):
        super().__init__(names, crop, count, random=crop is not None)
        self.folder = folder

    def frames(self, name: str) -> int:
        return self.folder.frames(name)

    def read(self, name: str, start: int, length: int) -> dict[str, torch.Tensor]:
        return {part: clip.read(start, length) for part, clip in self.folder.clips[name].items()}
