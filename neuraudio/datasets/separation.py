"""The separation layout: ``DIR/<song>/<stem>.wav`` with any stem names; the mixture is ``mixture.wav`` when
present, else the sum of the stems. Songs are split into train/validation by a seeded hash of their names.

Training items are random crops ``{"mixture": (C, L), "stems": (S, C, L)}``; with ``remix=True`` each stem gets a
random gain and the mixture is their sum (the usual on-the-fly augmentation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from neuraudio.datasets import augment
from neuraudio.datasets.common import Clip, CropSet, DataError, audio_files, require_dir


class SeparationFolder:
    def __init__(self, root, sample_rate: int, channels: int, stems: Sequence[str] | None = None):
        self.root = require_dir(Path(root), "the separation data")
        self.songs: dict[str, dict[str, Clip]] = {}
        for song in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = {p.stem: Clip(p, sample_rate, channels) for p in audio_files(song)}
            if not [n for n in files if n != "mixture"]:
                raise DataError(f"{song}: no stem files (<stem>.wav) in this song folder.")
            self.songs[song.name] = files
        if not self.songs:
            raise DataError(f"{self.root}: no song folders (DIR/<song>/<stem>.wav).")
        found = sorted({n for files in self.songs.values() for n in files if n != "mixture"})
        self.stems = list(stems) if stems else found
        unknown = sorted(set(found) - set(self.stems))
        if unknown:
            raise DataError(f"{self.root}: stems {', '.join(unknown)} are not among the recipe's stems "
                            f"({', '.join(self.stems)}).")
        self.channels = channels

    def frames(self, song: str) -> int:
        return min(c.frames for c in self.songs[song].values())

    def read(self, song: str, start: int, length: int) -> dict[str, torch.Tensor]:
        files = self.songs[song]
        stems = torch.stack([files[n].read(start, length) if n in files else torch.zeros(self.channels, length)
                             for n in self.stems])
        mixture = files["mixture"].read(start, length) if "mixture" in files else stems.sum(0)
        return {"mixture": mixture, "stems": stems}


class SeparationSet(CropSet):
    """Items ``{"mixture": (C, L), "stems": (S, C, L)}``; ``crop=None`` gives whole songs (validation)."""

    def __init__(self, folder: SeparationFolder, songs: Sequence[str], crop: int | None, count: int | None = None,
                 remix: bool = False):
        super().__init__(songs, crop, count, random=crop is not None)
        self.folder, self.remix = folder, remix

    def frames(self, name: str) -> int:
        return self.folder.frames(name)

    def read(self, name: str, start: int, length: int) -> dict[str, torch.Tensor]:
        item = self.folder.read(name, start, length)
        if self.remix and self.random:
            item["stems"] = torch.stack([augment.random_gain(s, -3.0, 3.0) for s in item["stems"]])
            item["mixture"] = item["stems"].sum(0)
        return item
