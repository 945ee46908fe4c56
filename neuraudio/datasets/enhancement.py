"""The enhancement layout, two forms:

* ``DIR/clean/*.wav`` + ``DIR/noise/*.wav``: mixed on the fly at a random SNR (``snr_db`` range), random gain and
  tilt; validation mixtures are fixed by the seed.
* ``DIR/clean/<name>.wav`` + ``DIR/noisy/<name>.wav``: paired recordings.

An optional ``DIR/rir/*.wav`` holds room impulse responses: with ``reverb_probability`` > 0, a training item's
speech goes through a random one (the noisy input hears the whole room, the target only the first 50 ms after
the direct path: the denoiser is not asked to dereverberate).

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
        self.sample_rate = sample_rate
        rir_dir = self.root / "rir"
        self.rirs = [Clip(p, sample_rate, 1).read()[0] for p in audio_files(rir_dir)] if rir_dir.is_dir() else []


class EnhancementSet(CropSet):
    """Items ``{"noisy", "clean"}``, each ``(1, L)``: paired files, or clean speech mixed with a random noise at a
    random SNR in ``snr_db`` (with a random gain and tilt). ``crop=None`` gives whole utterances (validation);
    ``seed`` fixes each item's mixture (the same validation set every epoch, the training RNG untouched)."""

    def __init__(self, folder: EnhancementFolder, names: Sequence[str], crop: int | None,
                 snr_db: tuple[float, float] = (-5.0, 20.0), count: int | None = None, seed: int | None = None,
                 reverb_probability: float = 0.0, random: bool | None = None):
        super().__init__(names, crop, count, random=crop is not None if random is None else random)
        self.folder, self.snr_db, self.seed = folder, snr_db, seed
        if reverb_probability and not folder.rirs:
            raise DataError(f"{folder.root}: reverb_probability > 0 needs room impulse responses in DIR/rir.")
        self.reverb_probability = float(reverb_probability)

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
        heard = clean
        if self.reverb_probability and float(torch.rand(())) < self.reverb_probability:
            rir = self.folder.rirs[int(torch.randint(0, len(self.folder.rirs), (1,)))]
            heard, clean = augment.reverberate(clean, rir, self.folder.sample_rate)
        noise = augment.mix_at_snr(heard, augment.random_tilt(noise), augment.uniform(*self.snr_db))
        return {"noisy": heard + noise, "clean": clean}
