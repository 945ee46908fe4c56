"""Noise for speech enhancement: babble, colored and modulated noise, music beds and real noise, as clips.

Kinds (each clip draws one, from its own seed):

* ``babble``: 4-12 talkers from a speech folder (``neuraudio data speech``), each at its own level;
* ``colored``: power spectral density ``1/f**a``, ``a`` in -2..2 (violet to brown);
* ``modulated``: colored noise under a slow amplitude modulation (0.2-8 Hz, depth 0.3-1), or mains hum (50 or 60 Hz
  with harmonics) over noise;
* ``music``: an excerpt of a music folder (e.g. mixtures from ``neuraudio data music``), low-passed or not;
* ``real``: an excerpt of a folder of real noise recordings.

Kinds whose folder is not given are skipped. Output: ``OUT/noise_NNNNNN.wav`` (16-bit, RMS -30..-15 dBFS) and
``.json`` beside it, plus ``manifest.jsonl``. The enhancement DataModule mixes these with speech on the fly.

    >>> build_noise("noise", minutes=20, sample_rate=16000, speech="speech", real="../shared/data/noise")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from neuraudio.data.common import (
    atomic_write_json,
    atomic_write_wav,
    finish_manifest,
    level_to,
    run_jobs,
    tilt,
)
from neuraudio.data.sources import AudioPool, colored_noise, require_audio

KINDS = ("babble", "colored", "modulated", "music", "real")
_POOLS: dict = {}


def _load_pools(folders: dict, sample_rate: int) -> None:
    for kind, folder in folders.items():
        _POOLS[kind] = AudioPool(folder, sample_rate, kind)


def babble(rng: np.random.Generator, length: int, pool: AudioPool) -> tuple[np.ndarray, dict]:
    talkers = int(rng.integers(4, 13))
    out = np.zeros(length)
    for _ in range(talkers):
        x, _ = pool.excerpt(rng, length)
        out += x / max(np.sqrt(np.mean(x**2)), 1e-9) * 10 ** (rng.uniform(-6, 0) / 20)
    return out, {"talkers": talkers}


def modulated(rng: np.random.Generator, length: int, sample_rate: int) -> tuple[np.ndarray, dict]:
    t = np.arange(length) / sample_rate
    if rng.random() < 0.7:
        rate, depth, exponent = float(rng.uniform(0.2, 8)), float(rng.uniform(0.3, 1)), float(rng.uniform(-1, 2))
        envelope = 1 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        return colored_noise(rng, length, exponent) * envelope, {"modulation_hz": rate, "depth": depth,
                                                                   "exponent": exponent}
    mains = float(rng.choice([50.0, 60.0]))
    hum = sum(np.sin(2 * np.pi * mains * k * t) / k**1.2 for k in range(1, 12) if mains * k < sample_rate / 2)
    return hum + 0.3 * colored_noise(rng, length, 1.0), {"mains_hz": mains}


def noise_clip(index: int, out: str, sample_rate: int, seconds: float, seed: int, kinds: tuple[str, ...]) -> dict:
    stem = Path(out) / f"noise_{index:06d}"
    if stem.with_suffix(".json").is_file() and stem.with_suffix(".wav").is_file():
        return json.loads(stem.with_suffix(".json").read_text())
    rng = np.random.default_rng([seed, index])
    kind = kinds[int(rng.integers(len(kinds)))]
    length = int(seconds * sample_rate)
    info: dict = {}
    if kind == "babble":
        x, info = babble(rng, length, _POOLS["babble"])
    elif kind == "colored":
        exponent = float(rng.uniform(-2, 2))
        x, info = colored_noise(rng, length, exponent), {"exponent": exponent}
    elif kind == "modulated":
        x, info = modulated(rng, length, sample_rate)
    else:
        x, source = _POOLS[kind].excerpt(rng, length)
        info = {"source": source}
    tilt_db, level_db = float(rng.uniform(-6, 6)), float(rng.uniform(-30, -15))
    x = level_to(tilt(x, sample_rate, tilt_db), level_db)
    atomic_write_wav(stem.with_suffix(".wav"), x, sample_rate)
    entry = {"file": stem.with_suffix(".wav").name, "index": index, "kind": kind, "tilt_db": round(tilt_db, 3),
             "level_db": round(level_db, 3), "seconds": seconds, "sample_rate": sample_rate, **info}
    atomic_write_json(stem.with_suffix(".json"), entry)
    return entry


def build_noise(out: str | Path, minutes: float, sample_rate: int = 16000, seconds: float = 10.0, seed: int = 0,
                speech: str | Path | None = None, music: str | Path | None = None, real: str | Path | None = None,
                workers: int = 2, progress: Callable[[int], None] | None = None) -> list[dict]:
    if minutes <= 0 or seconds <= 0:
        raise ValueError(f"minutes and seconds must be positive, got {minutes} and {seconds}.")
    folders = {k: str(v) for k, v in (("babble", speech), ("music", music), ("real", real)) if v}
    kinds = tuple(k for k in KINDS if k in ("colored", "modulated") or k in folders)
    for kind, folder in folders.items():
        require_audio(folder, kind)  # a sentence now, not a traceback from a worker
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clips = int(np.ceil(minutes * 60 / seconds))
    entries = run_jobs(noise_clip, clips, str(out), sample_rate, seconds, seed, kinds, workers=workers,
                       initializer=_load_pools, initargs=(folders, sample_rate), progress=progress)
    finish_manifest(out, entries, {"kind": "noise", "minutes": minutes, "sample_rate": sample_rate, "seed": seed,
                                   "kinds": list(kinds), "folders": folders})
    return entries
