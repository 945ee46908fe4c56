"""The effects layout: one input recording and one output recording per take (knob setting).

    DIR/input.<ext>                 the signal played into the gear
    DIR/<take>/output.<ext>         what the gear returned, sample-aligned with the input
    DIR/<take>/knobs.json           {"knob_name": value, ...} for that take (absent: a fixed-setting capture)
    DIR/ignore.json                 optional {"ranges": [[start, end], ...]} in samples: excluded from losses/metrics

The timeline is cut into segments of ``split_seconds``; a seeded choice of ``val_fraction`` of them is validation
for every take, the rest is training. Training crops (``warmup_seconds + crop_seconds``) lie inside one training
segment, so they never overlap validation; the warm-up part (where the model's state settles) is masked out.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from neuraudio.datasets.common import Clip, DataError, find_audio, read_json, require_dir


class EffectsFolder:
    """Reads and checks an effects folder; holds the input, the takes, their knobs and the loss mask."""

    def __init__(self, root, sample_rate: int, takes: list[str] | None = None):
        self.root = require_dir(Path(root), "the effects data")
        input_path = find_audio(self.root, "input")
        if input_path is None:
            raise DataError(f"{self.root}: no input.<wav|flac|...> file (the signal played into the gear).")
        self.input = Clip(input_path, sample_rate, channels=1)
        self.takes: list[tuple[str, Clip, dict[str, float]]] = []
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        if takes is not None:
            missing = sorted(set(takes) - {p.name for p in folders})
            if missing:
                raise DataError(f"{self.root}: no take folder named {', '.join(missing)}.")
            folders = [p for p in folders if p.name in takes]
        for folder in folders:
            output = find_audio(folder, "output")
            if output is None:
                raise DataError(f"{folder}: no output.<wav|flac|...> file in this take folder.")
            clip = Clip(output, sample_rate, channels=1)
            if abs(clip.frames - self.input.frames) > 0.01 * sample_rate:
                raise DataError(f"{output}: {clip.frames} samples, but the input has {self.input.frames}; "
                                "a take must be the whole input recorded through the gear.")
            knobs = {}
            if (folder / "knobs.json").is_file():
                knobs = read_json(folder / "knobs.json")
                for name, value in knobs.items():
                    if not isinstance(value, (int, float)):
                        raise DataError(f"{folder / 'knobs.json'}: knob {name!r} must be a number, got {value!r}.")
            self.takes.append((folder.name, clip, {k: float(v) for k, v in knobs.items()}))
        if not self.takes:
            raise DataError(f"{self.root}: no take folders (DIR/<take>/output.wav).")
        names = {tuple(sorted(k)) for _, _, k in self.takes}
        if len(names) > 1:
            raise DataError(f"{self.root}: takes name different knobs ({' vs '.join(map(str, names))}); "
                            "every knobs.json must set the same knobs.")
        self.knob_names = sorted(self.takes[0][2])
        self.frames = min(self.input.frames, min(c.frames for _, c, _ in self.takes))
        self.mask = torch.ones(self.frames)
        if (self.root / "ignore.json").is_file():
            ranges = read_json(self.root / "ignore.json").get("ranges", [])
            for pair in ranges:
                if not (isinstance(pair, list) and len(pair) == 2 and 0 <= pair[0] <= pair[1]):
                    raise DataError(f"{self.root / 'ignore.json'}: each range must be [start, end] samples, got {pair!r}.")
                self.mask[int(pair[0]) : int(pair[1])] = 0.0
        # Whole signals in memory: captures are minutes long, and crops hit random places.
        self.x = self.input.read(0, self.frames)
        self.y = [clip.read(0, self.frames) for _, clip, _ in self.takes]

    def knob_tensor(self, take: int) -> torch.Tensor:
        values = self.takes[take][2]
        return torch.tensor([values[n] for n in self.knob_names], dtype=torch.float32)


def split_segments(frames: int, segment: int, val_fraction: float, seed: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Cut ``[0, frames)`` into segments; a seeded choice of ``val_fraction`` of them (at least one) validates."""
    bounds = [(s, min(s + segment, frames)) for s in range(0, frames, segment)]
    if len(bounds) < 2:
        raise DataError(f"the recording is shorter than two split segments of {segment} samples; lower split_seconds.")
    n_val = min(len(bounds) - 1, max(1, round(val_fraction * len(bounds))))
    order = torch.randperm(len(bounds), generator=torch.Generator().manual_seed(seed)).tolist()
    val_ids = set(order[:n_val])
    train = [b for i, b in enumerate(bounds) if i not in val_ids]
    val = [b for i, b in enumerate(bounds) if i in val_ids]
    return train, val


class EffectsTrainSet(Dataset):
    """Random crops of training segments: ``{"input", "target", "mask": (1, L), "knobs": (K,)}``.

    A crop whose loss region (after the warm-up) is less than ``min_unmasked`` unmasked is drawn again (up to 20
    times), so data with large ignored ranges still gives full batches of signal.
    """

    def __init__(self, folder: EffectsFolder, segments, crop: int, warmup: int, crops_per_epoch: int,
                 min_unmasked: float = 0.5):
        usable = [(a, b) for a, b in segments if b - a >= crop + warmup]
        if not usable:
            raise DataError(f"{folder.root}: no training segment holds a crop of {crop + warmup} samples; "
                            "shorten crop_seconds/warmup_seconds or lengthen split_seconds.")
        self.folder, self.segments, self.crop, self.warmup, self.count = folder, usable, crop, warmup, crops_per_epoch
        self.min_unmasked = min_unmasked

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        take = int(torch.randint(0, len(self.folder.takes), (1,)))
        length = self.crop + self.warmup
        for _ in range(20):
            a, b = self.segments[int(torch.randint(0, len(self.segments), (1,)))]
            start = a + int(torch.randint(0, b - a - length + 1, (1,)))
            if float(self.folder.mask[start + self.warmup : start + length].mean()) >= self.min_unmasked:
                break
        mask = self.folder.mask[start : start + length].clone()
        mask[: self.warmup] = 0.0
        return {
            "input": self.folder.x[:, start : start + length],
            "target": self.folder.y[take][:, start : start + length],
            "mask": mask[None],
            "knobs": self.folder.knob_tensor(take),
        }


class EffectsValSet(Dataset):
    """Every validation segment of every take, whole; the first ``warmup`` samples of each are masked."""

    def __init__(self, folder: EffectsFolder, segments, warmup: int):
        self.folder, self.warmup = folder, warmup
        self.items = [(t, a, b) for t in range(len(folder.takes)) for a, b in segments]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        take, a, b = self.items[index]
        mask = self.folder.mask[a:b].clone()
        mask[: self.warmup] = 0.0
        return {"input": self.folder.x[:, a:b], "target": self.folder.y[take][:, a:b], "mask": mask[None],
                "knobs": self.folder.knob_tensor(take)}


def describe(folder: EffectsFolder) -> str:
    takes = ", ".join(f"{name} {json.dumps(k)}" for name, _, k in folder.takes)
    return f"{folder.root}: {folder.frames / folder.input.sample_rate:.1f} s, takes: {takes}"
