"""The separation layout: ``DIR/<song>/<stem>.wav`` with any stem names; the mixture is ``mixture.wav`` when
present, else the sum of the stems. Songs are split into train/validation by a seeded hash of their names.

Training items are random crops ``{"mixture": (C, L), "stems": (S, C, L)}``; with ``remix=True`` the mixture is
the sum of stems augmented on the fly: each stem from a random song at a random start (with probability
``cross_song``; else all from one song, in time), a random gain of +-3 dB, and for stereo a random channel swap and
polarity per stem (the augmentations of Demucs' training, without pitch or tempo changes). A song without a stem
gives silence for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch

from neuraudio.datasets import augment
from neuraudio.datasets.common import Clip, CropSet, DataError, audio_files, require_dir


class SeparationFolder:
    """Songs of stems. ``groups`` maps an output stem to the file stems summed into it (``{"accompaniment": ["drums",
    "bass", "other"]}`` trains a two-stem separator on four-stem songs)."""

    def __init__(self, root, sample_rate: int, channels: int, stems: Sequence[str] | None = None,
                 groups: Mapping[str, Sequence[str]] | None = None):
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
        self.groups = {k: list(v) for k, v in (groups or {}).items()}
        self.stems = list(stems) if stems else found
        unknown = sorted(set(found) - set(self.stems) - {m for members in self.groups.values() for m in members})
        if unknown:
            raise DataError(f"{self.root}: stems {', '.join(unknown)} are not among the recipe's stems "
                            f"({', '.join(self.stems)}).")
        self.channels = channels

    def frames(self, song: str) -> int:
        return min(c.frames for c in self.songs[song].values())

    def read_stem(self, song: str, stem: str, start: int, length: int) -> torch.Tensor:
        """``(channels, length)`` of one stem, a group's members summed (silence where the song has none)."""
        out = torch.zeros(self.channels, length)
        for member in self.groups.get(stem, [stem]):
            clip = self.songs[song].get(member)
            if clip is not None:
                out = out + clip.read(start, length)
        return out

    def read(self, song: str, start: int, length: int) -> dict[str, torch.Tensor]:
        files = self.songs[song]
        stems = torch.stack([self.read_stem(song, n, start, length) for n in self.stems])
        mixture = files["mixture"].read(start, length) if "mixture" in files else stems.sum(0)
        return {"mixture": mixture, "stems": stems}


class SeparationSet(CropSet):
    """Items ``{"mixture": (C, L), "stems": (S, C, L)}``; ``crop=None`` gives whole songs (validation)."""

    def __init__(self, folder: SeparationFolder, songs: Sequence[str], crop: int | None, count: int | None = None,
                 remix: bool = False, cross_song: float = 0.5):
        super().__init__(songs, crop, count, random=crop is not None)
        self.folder, self.remix, self.cross_song = folder, remix, float(cross_song)

    def frames(self, name: str) -> int:
        return self.folder.frames(name)

    def read(self, name: str, start: int, length: int) -> dict[str, torch.Tensor]:
        if not (self.remix and self.random):
            return self.folder.read(name, start, length)
        stems = []
        across = float(torch.rand(())) < self.cross_song
        for stem in self.folder.stems:
            song, at = name, start
            if across:  # this stem from another song, at another time
                song = self.names[int(torch.randint(0, len(self.names), (1,)))]
                at = int(torch.randint(0, max(1, self.frames(song) - length + 1), (1,)))
            x = augment.random_gain(self.folder.read_stem(song, stem, at, length), -3.0, 3.0)
            if x.shape[0] == 2 and float(torch.rand(())) < 0.5:
                x = x.flip(0)
            if float(torch.rand(())) < 0.5:
                x = -x
            stems.append(x)
        stems = torch.stack(stems)
        return {"mixture": stems.sum(0), "stems": stems}


class QuerySet(CropSet):
    """Items for a query-conditioned separator: ``{"mixture": (C, L), "stems": (1, C, L), "query": (C, Q)}``.

    Each item takes a random song and one of its stems that is audible in the crop (mean power above 1e-6) as the
    target; the mixture is the sum of the song's stems there; the query is the same stem elsewhere: another stretch of
    the same song, or (with probability ``other_song``) of another song that has a stem of that name. The folder's
    groups are targets too (``other: [guitar, lead, piano, strings]`` teaches the model to answer a query that is
    itself a mix, as the four-stem comparison with a fixed-stem model asks), each drawn with probability
    ``group_probability`` when audible. With ``random=False`` (validation) the choices are fixed by ``seed``,
    ``count`` items.
    """

    def __init__(self, folder: SeparationFolder, songs: Sequence[str], crop: int, query: int, count: int,
                 other_song: float = 0.5, random: bool = True, seed: int = 0, group_probability: float = 0.25):
        super().__init__(songs, crop, count, random=True)
        self.folder, self.query, self.other_song = folder, int(query), float(other_song)
        self.fixed, self.seed = not random, seed
        self.group_probability = float(group_probability)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index) if self.fixed else None
        draw = lambda n: int(torch.randint(0, max(1, n), (1,), generator=gen))  # noqa: E731
        for _ in range(20):  # a crop where some stem is audible
            song = self.names[draw(len(self.names))]
            start = draw(self.frames(song) - self.crop + 1)
            item = self.folder.read(song, start, self.crop)
            audible = [i for i, s in enumerate(item["stems"]) if float(s.pow(2).mean()) > 1e-6]
            if audible:
                break
        else:
            raise DataError("no audible stem in 20 random crops: are the songs silent?")
        mixture = item["stems"].sum(0)
        i = audible[draw(len(audible))]
        stem, target = self.folder.stems[i], item["stems"][i : i + 1]
        groups = [g for g in self.folder.groups if g not in self.folder.stems]
        if groups and float(torch.rand((), generator=gen)) < self.group_probability:
            group = groups[draw(len(groups))]
            members = self.folder.groups[group]
            held = [self.folder.stems.index(m) for m in members if m in self.folder.stems]  # read already
            summed = item["stems"][held].sum(0)
            for m in (m for m in members if m not in self.folder.stems):
                summed = summed + self.folder.read_stem(song, m, start, self.crop)
            if float(summed.pow(2).mean()) > 1e-6:
                stem, target = group, summed[None]
        has = lambda n: any(m in self.folder.songs[n] for m in self.folder.groups.get(stem, [stem]))  # noqa: E731
        source = song
        others = [n for n in self.names if n != song and has(n)]
        if others and float(torch.rand((), generator=gen)) < self.other_song:
            source = others[draw(len(others))]
        at = draw(self.frames(source) - self.query + 1)
        query = self.folder.read_stem(source, stem, at, self.query)
        return {"mixture": mixture, "stems": target, "query": query}

    def frames(self, name: str) -> int:
        return self.folder.frames(name)
