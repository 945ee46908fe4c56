"""Lightning DataModules for the folder layouts of ARCHITECTURE.md; each wraps the datasets of
``neuraudio.datasets``. Common arguments:

    root:            the folder (``--data.root DIR``)
    sample_rate:     Hz; files at another rate are resampled once on load
    batch_size, num_workers
    crop_seconds:    length of random training crops
    crops_per_epoch: training items per epoch (crops are random, so an epoch is a count, not a pass)
    val_fraction:    share of songs / clips / utterances / segments held out for validation
    seed:            fixes the validation split (and the validation mixtures)
"""

from __future__ import annotations

from typing import Sequence

import lightning as L
from torch.utils.data import DataLoader, Dataset

from neuraudio.datasets.common import split_names
from neuraudio.datasets.echo import EchoFolder, EchoSet
from neuraudio.datasets.effects import EffectsFolder, EffectsTrainSet, EffectsValSet, split_segments
from neuraudio.datasets.enhancement import EnhancementFolder, EnhancementSet
from neuraudio.datasets.separation import SeparationFolder, SeparationSet
from neuraudio.datasets.vocoder import VocoderFolder, VocoderSet


class FolderDataModule(L.LightningDataModule):
    def __init__(self, root: str, sample_rate: int, batch_size: int = 16, num_workers: int = 0,
                 crop_seconds: float = 1.0, crops_per_epoch: int = 512, val_fraction: float = 0.1, seed: int = 0):
        super().__init__()
        if batch_size < 1 or crop_seconds <= 0 or crops_per_epoch < 1:
            raise ValueError("batch_size and crops_per_epoch must be >= 1 and crop_seconds > 0.")
        self.root, self.sample_rate = root, int(sample_rate)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.crop = round(crop_seconds * sample_rate)
        self.crops_per_epoch, self.val_fraction, self.seed = crops_per_epoch, val_fraction, seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def build(self) -> tuple[Dataset, Dataset]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = self.build()

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, drop_last=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=False)  # items are random crops already

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, 1, shuffle=False)  # whole segments/songs: lengths differ


class EffectsDataModule(FolderDataModule):
    """``DIR/input.wav`` + ``DIR/<take>/output.wav`` (+ ``knobs.json``), optional ``DIR/ignore.json``.

    Extra args: ``warmup_seconds`` (masked start of every crop, where the model's state settles),
    ``split_seconds`` (length of the train/validation segments of the timeline), ``val_from_seconds`` (instead of a
    seeded choice of segments: everything from this time on validates, e.g. the last clips of a file), ``takes``
    (use only these take folders, e.g. to hold a knob setting out).
    """

    def __init__(self, root: str, sample_rate: int, batch_size: int = 16, num_workers: int = 0,
                 crop_seconds: float = 0.5, crops_per_epoch: int = 512, val_fraction: float = 0.1, seed: int = 0,
                 warmup_seconds: float = 0.05, split_seconds: float = 5.0, val_from_seconds: float | None = None,
                 takes: list[str] | None = None):
        super().__init__(root, sample_rate, batch_size, num_workers, crop_seconds, crops_per_epoch, val_fraction, seed)
        self.warmup = round(warmup_seconds * sample_rate)
        self.split = round(split_seconds * sample_rate)
        self.val_from = None if val_from_seconds is None else round(val_from_seconds * sample_rate)
        self.takes = takes
        self.folder: EffectsFolder | None = None

    def build(self):
        self.folder = EffectsFolder(self.root, self.sample_rate, self.takes)
        if self.val_from is not None:
            train = [(s, min(s + self.split, self.val_from)) for s in range(0, self.val_from, self.split)]
            val = [(self.val_from, self.folder.frames)]
        else:
            train, val = split_segments(self.folder.frames, self.split, self.val_fraction, self.seed)
        self.train_segments, self.val_segments = train, val
        return (EffectsTrainSet(self.folder, train, self.crop, self.warmup, self.crops_per_epoch),
                EffectsValSet(self.folder, val, self.warmup))


class SeparationDataModule(FolderDataModule):
    """``DIR/<song>/<stem>.wav`` (any stem names; ``mixture.wav`` optional). Extra: ``stems``, ``channels``, ``remix``
    (stems remixed across songs with gain, channel swap and polarity: ``neuraudio.datasets.separation``),
    ``val_root`` (a folder of whole validation songs; else a seeded ``val_fraction`` of ``DIR``'s songs),
    ``val_crop_seconds`` (each validation song's first seconds; ``None``: whole songs), ``groups`` (output stems made
    of several file stems, e.g. ``accompaniment: [drums, bass, other]``), ``query_seconds`` (items for a
    query-conditioned model: a random audible stem as the target and a query clip of it from elsewhere:
    ``neuraudio.datasets.separation.QuerySet``; ``val_items`` fixed validation items)."""

    def __init__(self, root: str, sample_rate: int, stems: Sequence[str] | None = None, channels: int = 2,
                 remix: bool = True, batch_size: int = 4, num_workers: int = 0, crop_seconds: float = 6.0,
                 crops_per_epoch: int = 256, val_fraction: float = 0.1, seed: int = 0, val_root: str | None = None,
                 val_crop_seconds: float | None = None, groups: dict[str, list[str]] | None = None,
                 query_seconds: float | None = None, val_items: int = 64):
        super().__init__(root, sample_rate, batch_size, num_workers, crop_seconds, crops_per_epoch, val_fraction, seed)
        self.stems, self.channels, self.remix, self.val_root = stems, channels, remix, val_root
        self.groups = groups
        self.query = None if query_seconds is None else round(query_seconds * sample_rate)
        self.val_items = int(val_items)
        self.val_crop = None if val_crop_seconds is None else round(val_crop_seconds * sample_rate)

    def build(self):
        folder = SeparationFolder(self.root, self.sample_rate, self.channels, self.stems, self.groups)
        self.stems = folder.stems
        if self.val_root:
            val_folder = SeparationFolder(self.val_root, self.sample_rate, self.channels, self.stems, self.groups)
            train, val = list(folder.songs), sorted(val_folder.songs)
        else:
            val_folder = folder
            train, val = split_names(list(folder.songs), self.val_fraction, self.seed)
        if self.query:  # a query-conditioned model: (mixture, one stem, a query clip of it)
            from neuraudio.datasets.separation import QuerySet

            val_crop = self.val_crop or self.crop
            return (QuerySet(folder, train, self.crop, self.query, self.crops_per_epoch),
                    QuerySet(val_folder, val, val_crop, self.query, self.val_items, random=False, seed=self.seed))
        return (SeparationSet(folder, train, self.crop, self.crops_per_epoch, self.remix),
                SeparationSet(val_folder, val, self.val_crop))


class EchoDataModule(FolderDataModule):
    """``DIR/<clip>/{mic,ref,target}.wav`` (e.g. ``neuraudio data echo``), or training items made on the fly.

    Extra args: ``speech`` (a folder: training items are synthesized on the fly from it, see
    ``neuraudio.train.echo_synth``; ``DIR`` then only validates, every clip of it: build it with a seed the training
    never draws), ``noise``, ``rir`` (folders of noise and of measured impulse responses), ``measured_probability``,
    ``linear_stage`` (add ``aec-linear``'s error and echo estimate to the synthesized items).
    """

    def __init__(self, root: str, sample_rate: int, batch_size: int = 16, num_workers: int = 0,
                 crop_seconds: float = 4.0, crops_per_epoch: int = 512, val_fraction: float = 0.1, seed: int = 0,
                 speech: str | None = None, noise: str | None = None, rir: str | None = None,
                 measured_probability: float = 0.3, linear_stage: bool = False):
        super().__init__(root, sample_rate, batch_size, num_workers, crop_seconds, crops_per_epoch, val_fraction, seed)
        self.speech, self.noise, self.rir = speech, noise, rir
        self.measured_probability, self.linear_stage = float(measured_probability), bool(linear_stage)

    def build(self):
        folder = EchoFolder(self.root, self.sample_rate)
        if self.speech:
            from neuraudio.train.echo_synth import EchoSynthSet

            crop = self.crop - self.crop % 160 if self.linear_stage else self.crop  # whole blocks of aec-linear
            train = EchoSynthSet(self.speech, self.noise, self.rir, self.sample_rate, crop, self.crops_per_epoch,
                                 self.measured_probability, linear_stage=self.linear_stage)
            return train, EchoSet(folder, sorted(folder.clips), None)
        train, val = split_names(list(folder.clips), self.val_fraction, self.seed)
        return EchoSet(folder, train, self.crop, self.crops_per_epoch), EchoSet(folder, val, None)


class EnhancementDataModule(FolderDataModule):
    """``DIR/clean/*.wav`` + ``DIR/noise/*.wav`` (mixed on the fly at ``snr_db``, optional ``DIR/rir``) or paired
    ``DIR/{clean,noisy}``.

    Extra args: ``snr_db`` (range, dB); ``reverb_probability`` (share of training items through a room impulse
    response of ``DIR/rir``); ``val_root`` (a folder of the same layout whose mixtures validate: e.g. held-out
    speakers with held-out noise segments; else a seeded ``val_fraction`` of the utterances); ``val_crop_seconds``
    (each validation mixture's first seconds; ``None``: whole utterances). Validation mixtures are fixed by ``seed``.
    """

    def __init__(self, root: str, sample_rate: int, snr_db: tuple[float, float] = (-5.0, 20.0), batch_size: int = 16,
                 num_workers: int = 0, crop_seconds: float = 2.0, crops_per_epoch: int = 512,
                 val_fraction: float = 0.1, seed: int = 0, reverb_probability: float = 0.0,
                 val_root: str | None = None, val_crop_seconds: float | None = None):
        super().__init__(root, sample_rate, batch_size, num_workers, crop_seconds, crops_per_epoch, val_fraction, seed)
        self.snr_db = tuple(snr_db)
        self.reverb_probability, self.val_root = float(reverb_probability), val_root
        self.val_crop = None if val_crop_seconds is None else round(val_crop_seconds * sample_rate)

    def build(self):
        folder = EnhancementFolder(self.root, self.sample_rate)
        if self.val_root:
            val_folder = EnhancementFolder(self.val_root, self.sample_rate)
            train, val = list(folder.clean), sorted(val_folder.clean)
        else:
            val_folder = folder
            train, val = split_names(list(folder.clean), self.val_fraction, self.seed)
        return (EnhancementSet(folder, train, self.crop, self.snr_db, self.crops_per_epoch,
                               reverb_probability=self.reverb_probability),
                EnhancementSet(val_folder, val, self.val_crop, self.snr_db, seed=self.seed, random=False))


class VocoderDataModule(FolderDataModule):
    """``DIR/**/*.wav`` (any audio libsndfile reads). Training crops start on a multiple of ``hop`` and are whole
    hops long, so a centred or causal STFT frames them as it frames the files. Validation is ``val_root`` when given
    (every file there: e.g. real speakers the model never trains on), else a seeded ``val_fraction`` of the files;
    each validation item is a file's first ``val_crop_seconds`` (default ``crop_seconds``).

    Extra args: ``hop`` (samples), ``val_root``, ``val_crop_seconds``.
    """

    def __init__(self, root: str, sample_rate: int, batch_size: int = 16, num_workers: int = 0,
                 crop_seconds: float = 1.0, crops_per_epoch: int = 512, val_fraction: float = 0.1, seed: int = 0,
                 hop: int = 1, val_root: str | None = None, val_crop_seconds: float | None = None):
        super().__init__(root, sample_rate, batch_size, num_workers, crop_seconds, crops_per_epoch, val_fraction, seed)
        if hop < 1:
            raise ValueError(f"hop must be at least 1 sample, got {hop}.")
        self.hop, self.val_root = int(hop), val_root
        self.crop = max(self.hop, self.crop // self.hop * self.hop)
        val_crop = self.crop if val_crop_seconds is None else round(val_crop_seconds * sample_rate)
        self.val_crop = max(self.hop, val_crop // self.hop * self.hop)

    def build(self):
        folder = VocoderFolder(self.root, self.sample_rate)
        if self.val_root:
            val_folder = VocoderFolder(self.val_root, self.sample_rate)
            train, val = list(folder.clips), sorted(val_folder.clips)
        else:
            val_folder = folder
            train, val = split_names(list(folder.clips), self.val_fraction, self.seed)
        return (VocoderSet(folder, train, self.crop, self.crops_per_epoch, hop=self.hop),
                VocoderSet(val_folder, val, self.val_crop, random=False))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.batch_size, shuffle=False)
