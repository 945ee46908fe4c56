"""Synthetic speech from every offline TTS voice installed, with per-utterance variation.

Voices: espeak-ng's English accents (US, GB, RP, Scotland, Lancaster, West Midlands, Caribbean) times its voice
variants (m1-m7, f1-f5, klatt, croak), flite's voices (kal, kal16, awb, rms, slt) and festival's (kal_diphone,
cmu_us_slt_arctic_hts). Text comes from :mod:`neuraudio.data.text`. Per utterance, drawn from the utterance's own
seed: speaking rate, pitch (espeak-ng, flite), a speaker warp (resampling that moves pitch and formants together
by 0.88-1.13, one of five values, so one raw voice gives five speakers), spectral tilt (+-6 dB between 100 Hz and
8 kHz) and level (RMS -35..-15 dBFS, peaks below -1 dBFS).

Output: ``OUT/utt_NNNNNN.wav`` (16-bit PCM) with ``utt_NNNNNN.json`` beside it, and ``OUT/manifest.jsonl`` (one line
per utterance, in order). The same seed gives the same bytes; an existing utterance is kept (resumable).

    >>> build_speech("speech", minutes=10, sample_rate=16000, seed=0)
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import soxr

from neuraudio.data.common import (
    atomic_write_json,
    atomic_write_wav,
    finish_manifest,
    level_to,
    process_pool,
    tilt,
)
from neuraudio.data.text import sentence
from neuraudio.data.tools import ToolError, available, require, run

ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "croak")
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
FESTIVAL_VOICES = {"kal_diphone": "festvox-kallpc16k", "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}
WARPS = (0.88, 0.94, 1.0, 1.06, 1.13)
ENGINE_SHARE = {"espeak-ng": 0.5, "flite": 0.3, "festival": 0.2}


@dataclass(frozen=True)
class Voice:
    engine: str  # espeak-ng, flite or festival
    name: str

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"


def festival_voice_installed(name: str) -> bool:
    roots = (Path("/usr/share/festival/voices"),)
    return any(root.is_dir() and any(root.glob(f"*/{name}")) for root in roots)


def voices() -> list[Voice]:
    """Every usable voice on this machine; ``ToolError`` when no TTS engine is installed at all."""
    found = []
    if available("espeak-ng"):
        found += [Voice("espeak-ng", f"{a}+{v}") for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]
    if available("flite"):
        found += [Voice("flite", v) for v in FLITE_VOICES]
    if available("text2wave"):
        found += [Voice("festival", v) for v in FESTIVAL_VOICES if festival_voice_installed(v)]
    if not found:
        raise ToolError("no text-to-speech engine is installed; install the Debian packages espeak-ng, flite and "
                        "festival (with festvox-kallpc16k and festvox-us-slt-hts).")
    return found


def synthesize(voice: Voice, text: str, rate: float, pitch: float, path: Path) -> None:
    """Speak ``text`` into the WAV file ``path``. ``rate``: 1 is the voice's normal speed; ``pitch``: 0..1."""
    if voice.engine == "espeak-ng":
        run([require("espeak-ng"), "-v", voice.name, "-s", str(round(175 * rate)), "-p", str(round(20 + 60 * pitch)),
             "-w", str(path), text])
    elif voice.engine == "flite":
        run([require("flite"), "-voice", voice.name, "--setf", f"duration_stretch={1 / rate:.3f}",
             "--setf", f"int_f0_target_mean={round(80 + 120 * pitch)}", "-t", text, "-o", str(path)])
    elif voice.engine == "festival":
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(text)
        try:
            run([require("text2wave"), "-eval", f"(voice_{voice.name})",
                 "-eval", f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})", "-o", str(path), f.name])
        finally:
            os.unlink(f.name)
    else:
        raise ValueError(f"unknown TTS engine {voice.engine!r}.")


def trim_silence(x: np.ndarray, sample_rate: int, floor_db: float = -50.0, pad_ms: float = 60.0) -> np.ndarray:
    """Cut leading and trailing parts below ``floor_db`` relative to the peak, keeping ``pad_ms`` around speech."""
    peak = np.abs(x).max()
    if peak == 0:
        return x
    loud = np.flatnonzero(np.abs(x) > peak * 10 ** (floor_db / 20))
    pad = int(pad_ms * sample_rate / 1000)
    return x[max(0, loud[0] - pad) : loud[-1] + pad + 1]


def utterance(index: int, out: str, sample_rate: int, seed: int, voice_list: list[Voice]) -> dict:
    """Make (or keep) utterance ``index``; returns its manifest entry."""
    stem = Path(out) / f"utt_{index:06d}"
    if stem.with_suffix(".json").is_file() and stem.with_suffix(".wav").is_file():
        return json.loads(stem.with_suffix(".json").read_text())
    rng = np.random.default_rng([seed, index])
    engines = sorted({v.engine for v in voice_list})
    share = np.array([ENGINE_SHARE[e] for e in engines])
    engine = engines[int(rng.choice(len(engines), p=share / share.sum()))]
    pool = [v for v in voice_list if v.engine == engine]
    voice = pool[int(rng.integers(len(pool)))]
    text = sentence(rng)
    rate, pitch = float(rng.uniform(0.8, 1.25)), float(rng.uniform(0, 1))
    warp = WARPS[int(rng.integers(len(WARPS)))]
    tilt_db = float(rng.uniform(-6, 6))
    level_db = float(rng.uniform(-35, -15))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        synthesize(voice, text, rate, pitch, raw)
        x, native = sf.read(raw, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    # warp: resample to native / warp and play at the native rate -> pitch and formants move by `warp`
    x = soxr.resample(x, native, native / warp, quality="VHQ") if warp != 1.0 else x
    x = soxr.resample(x, native, sample_rate, quality="VHQ") if native != sample_rate else x
    x = trim_silence(x, sample_rate)
    x = level_to(tilt(x, sample_rate, tilt_db), level_db)
    atomic_write_wav(stem.with_suffix(".wav"), x, sample_rate)
    entry = {"file": stem.with_suffix(".wav").name, "index": index, "text": text, "voice": voice.id,
             "speaker": f"{voice.id}@{warp:.2f}", "rate": round(rate, 4), "pitch": round(pitch, 4), "warp": warp,
             "tilt_db": round(tilt_db, 3), "level_db": round(level_db, 3), "seconds": round(len(x) / sample_rate, 4),
             "sample_rate": sample_rate}
    atomic_write_json(stem.with_suffix(".json"), entry)
    return entry


def real_utterances(folder: str | Path, out: Path, sample_rate: int) -> list[dict]:
    """Real speech files from ``folder``, resampled to ``sample_rate`` and mono, as ``real_NNNNNN.wav`` entries
    (indices from 1,000,000 so they sort after the synthetic ones)."""
    from neuraudio.audio import audio_files_under, read_audio

    files = audio_files_under(Path(folder))
    if not files:
        raise ValueError(f"{folder}: no audio files found for --real.")
    entries = []
    for i, path in enumerate(files):
        index = 1_000_000 + i
        target = out / f"real_{index:07d}.wav"
        x = read_audio(path, sample_rate=sample_rate, channels=1)[0][0].double().numpy()
        if not target.is_file():
            atomic_write_wav(target, x, sample_rate)
        entries.append({"file": target.name, "index": index, "text": "", "voice": f"real:{Path(path).name}",
                        "speaker": f"real:{Path(path).name}", "seconds": round(len(x) / sample_rate, 4),
                        "sample_rate": sample_rate})
    return entries


def build_speech(out: str | Path, minutes: float, sample_rate: int = 16000, seed: int = 0, workers: int = 2,
                 real: str | Path | None = None, progress: Callable[[float], None] | None = None) -> list[dict]:
    """Write utterances until they total at least ``minutes``; returns the manifest entries.

    ``real``: a folder of real speech mixed in (each file once, not counted in ``minutes``).

    Utterances are made in index order in batches (``workers`` processes); the build keeps the shortest prefix of
    indices that reaches ``minutes`` (so the result does not depend on ``workers``) and removes any made beyond it.
    ``progress`` gets the minutes done so far.
    """
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}.")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}.")
    voice_list = voices()  # a missing TTS engine stops here, before any folder is made
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    total, index = 0.0, 0
    batch = max(1, 4 * workers)
    with process_pool(workers) as pool:
        while total < minutes * 60:
            indices = list(range(index, index + batch))
            made = list(pool.map(utterance, indices, [str(out)] * batch, [sample_rate] * batch, [seed] * batch,
                                 [voice_list] * batch))
            for entry in made:
                if total >= minutes * 60:
                    _remove(out, entry["index"])
                    continue
                entries.append(entry)
                total += entry["seconds"]
            index += batch
            if progress:
                progress(min(total, minutes * 60) / 60)
    for stale in out.glob("utt_*.json"):  # left by an earlier, longer build: not part of this one
        if int(stale.stem[4:]) >= index:
            _remove(out, int(stale.stem[4:]))
    if real:
        entries += real_utterances(real, out, sample_rate)
    finish_manifest(out, entries, {"kind": "speech", "real": str(real) if real else None, "minutes": minutes, "sample_rate": sample_rate, "seed": seed,
                                   "voices_available": [v.id for v in voice_list]})
    return entries


def _remove(out: Path, index: int) -> None:
    for suffix in (".wav", ".json"):
        (out / f"utt_{index:06d}{suffix}").unlink(missing_ok=True)
