"""The enhancement layout, two forms:

* ``DIR/clean/*.wav`` + ``DIR/noise/*.wav``: mixed on the fly at a random SNR (``snr_db`` range), random gain and
  tilt; validation mixtures are fixed by the seed.
* ``DIR/clean/<name>.wav`` + ``DIR/noisy/<name>.wav``: paired recordings.

Items are ``{"noisy": (1, L), "clean": (1, L)}``. Utterances are split by a seeded hash of their names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from neuraudio.datasets import augment
from neuraudio.datasets.common import Clip, CropSet, DataError, audio_files, random_start, require_dir


class EnhancementFolder:
    def __init__(self, root, sample_rate: int):
        self.root = require_dir(Path(root), "the enhancement data")
        clean_dir = require_dir(self.root / "clean", "the clean speech (DIR/clean)")
        self.clean = {p.stem: Clip(p, sample_rate, 1) for p in audio_files(clean_dir)}
        if not self.clean:
            raise DataError(f"{clean_dir}: holds no audio files.")
        self.paired = (self.root / "noisy").is_dir()
        if self.paired:
            self.noisy = {p.stem: Clip(p, sample_rate, 1) for p in audio_files(self.root / "noisy")}
            missing = sorted(set(self.clean) - set(self.noisy))
            if missing:
                raise DataError(f"{self.root / 'noisy'}: no noisy file for {', '.join(missing[:5])} (names must match clean/).")
            self.noise = []
        else:
            noise_dir = require_dir(self.root / "noise", "the noise (DIR/noise, or DIR/noisy for paired data)")
            self.noise = [Clip(p, sample_rate, 1) for p in audio_files(noise_dir)]
            if not self.noise:
                raise DataError(f"{noise_dir}: holds no audio files.")


class EnhancementSet(CropSet):
    """Items ``{"noisy", "clean"}``, each ``(1, L)``: paired files, or clean speech mixed with a random noise at a
    random SNR in ``snr_db`` (with a random gain and tilt). ``crop=None`` gives whole utterances (validation);
    ``seed`` fixes each item's mixture (the same validation set every epoch, the training RNG untouched)."""

    def __init__(self, folder: EnhancementFolder, names: Sequence[str], crop: int | None,
                 snr_db: tuple[float, float] = (-5.0, 20.0), count: int | None = None, seed: int | None = None):
        super().__init__(names, crop, count, random=crop is not None)
        self.folder, self.snr_db, self.seed = folder, snr_db, seed

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.seed is None:
            return super().__getitem__(index)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 100_003 + index)
            return super().__getitem__(index)

    def frames(self, name: str) -> int:
        return self.folder.clean[name].frames

    def read(self, name: str, start: int, length: int) -> dict[str, torch.Tensor]:
        clean = self.folder.clean[name].read(start, length)
        if self.folder.paired:
            return {"noisy": self.folder.noisy[name].read(start, length), "clean": clean}
        noise_clip = self.folder.noise[int(torch.randint(0, len(self.folder.noise), (1,)))]
        noise = noise_clip.read(random_start(noise_clip.frames, length), length)
        clean = augment.random_gain(clean, -10.0, 6.0)
        noise = augment.mix_at_snr(clean, augment.random_tilt(noise), augment.uniform(*self.snr_db))
        return {"noisy": clean + noise, "clean": clean}
