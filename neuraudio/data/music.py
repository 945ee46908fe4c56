"""Multitrack music: generated songs (:mod:`neuraudio.data.midi`) rendered stem by stem through General MIDI
soundfonts with fluidsynth, then mixed.

Per stem, drawn from the song's seed: one of the installed soundfonts (``fluid-soundfont-gm``, ``timgm6mb-soundfont``,
``musescore-general-soundfont-small``), a program of the stem's General MIDI family (drums: a kit), a level, a pan,
an EQ (spectral tilt +-4 dB) and a reverb (exponentially decaying noise, 0.3-2.0 s, 0-35 % wet; fluidsynth's own
reverb and chorus are off). The vocal stem is sung: each note of the vocal melody is a syllable spoken by an offline
TTS voice (espeak-ng or flite), moved to the note's pitch by resampling, over a choir or voice program doubling the
melody. Output, in the separation layout: ``OUT/song_NNNNN/<stem>.wav`` (16-bit stereo) for the stems that play,
``mixture.wav`` (32-bit float, exactly the sum of the stem files as written) and ``meta.json``. A song is
composed in whole 4-bar phrases and cut to exactly ``seconds``, ending in a 0.5 s fade-out.

    >>> build_music("music", songs=10, seconds=30, sample_rate=44100, seed=0)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import fftconvolve

from neuraudio.data.common import (
    atomic_write_json,
    atomic_write_wav,
    finish_manifest,
    median_f0,
    run_jobs,
    rms_db,
    tilt,
)
from neuraudio.data.midi import Note, Song, generate_song, midi_file
from neuraudio.data.tools import available, require, require_soundfonts, run

FADE_SECONDS = 0.5  # a song cut to the asked length ends with this raised-cosine fade
STEMS = ("drums", "bass", "piano", "guitar", "strings", "lead", "vocals")
FAMILIES = {
    "bass": tuple(range(32, 40)),
    "piano": tuple(range(0, 8)),
    "guitar": tuple(range(24, 32)),
    "strings": tuple(range(40, 52)) + tuple(range(88, 96)),
    "lead": tuple(range(56, 88)),
    "vocals": (52, 53, 54),
}
KEYS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)
LEVEL_DB = {"drums": -2.0, "bass": -4.0, "piano": -8.0, "guitar": -8.0, "strings": -11.0, "lead": -6.0,
            "vocals": -4.0}


def render_part(notes: list[Note], song: Song, program: int, drums: bool, soundfont: Path, sample_rate: int,
                length: int) -> np.ndarray:
    """fluidsynth render of one part, ``(2, length)`` float64."""
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "part.mid", Path(tmp) / "part.wav"
        mid.write_bytes(midi_file(notes, song.tempo_bpm, program, 9 if drums else 0))
        run([require("fluidsynth"), "-ni", "-q", "-R", "0", "-C", "0", "-o", "synth.dynamic-sample-loading=1",
             "-g", "0.5", "-r", str(sample_rate),
             "-F", str(wav), str(soundfont), str(mid)], timeout=600)
        audio, rate = sf.read(wav, dtype="float64", always_2d=True)
    audio = audio.T
    if rate != sample_rate:
        audio = soxr.resample(audio.T, rate, sample_rate, quality="VHQ").T
    out = np.zeros((2, length))
    n = min(length, audio.shape[-1])
    out[:, :n] = audio[:2, :n] if audio.shape[0] >= 2 else audio[:1, :n]
    return out


def reverb(x: np.ndarray, rng: np.random.Generator, sample_rate: int, rt60: float, wet: float) -> np.ndarray:
    """Stereo convolution reverb with decorrelated exponentially decaying noise tails."""
    n = int(rt60 * sample_rate)
    decay = np.exp(-6.91 * np.arange(n) / n)  # -60 dB at rt60
    ir = rng.standard_normal((2, n)) * decay
    ir /= np.sqrt((ir**2).sum(axis=-1, keepdims=True))
    wet_signal = np.stack([fftconvolve(x[c], ir[c])[: x.shape[-1]] for c in range(2)])
    return (1 - wet) * x + wet * wet_signal


def sing(notes: list[Note], song: Song, rng: np.random.Generator, sample_rate: int,
         length: int) -> tuple[np.ndarray, str]:
    """The vocal melody sung with TTS syllables: ``(2, length)`` and the voice used ("" when no TTS is installed)."""
    from neuraudio.data.speech import Voice, synthesize, trim_silence

    engines = [e for e in ("espeak-ng", "flite") if available(e)]
    if not engines:
        return np.zeros((2, length)), ""
    engine = engines[int(rng.integers(len(engines)))]
    if engine == "espeak-ng":
        accent = ("en-us", "en-gb", "en-gb-x-rp", "en-029")[int(rng.integers(4))]
        voice = Voice(engine, f"{accent}+{('m1', 'm3', 'f1', 'f2', 'f4', 'f5')[int(rng.integers(6))]}")
    else:
        voice = Voice(engine, ("slt", "kal16", "rms", "awb")[int(rng.integers(4))])
    cache: dict[str, tuple[np.ndarray, float]] = {}
    out = np.zeros(length)
    seconds_per_tick = song.seconds_per_tick
    with tempfile.TemporaryDirectory() as tmp:
        for note in notes:
            if note.syllable not in cache:
                path = Path(tmp) / f"{note.syllable}.wav"
                synthesize(voice, note.syllable, 0.8, 0.5, path)
                audio, rate = sf.read(path, dtype="float64", always_2d=True)
                audio = audio.mean(axis=1)
                if rate != sample_rate:
                    audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
                audio = trim_silence(audio, sample_rate, pad_ms=5)
                cache[note.syllable] = (audio / max(np.abs(audio).max(), 1e-9), median_f0(audio, sample_rate))
            syllable, f0 = cache[note.syllable]
            target = 440.0 * 2 ** ((note.pitch - 69) / 12)
            ratio = target / f0 if f0 > 0 else 1.0
            shifted = soxr.resample(syllable, sample_rate, sample_rate / ratio, quality="HQ")
            start = int(note.start * seconds_per_tick * sample_rate)
            n = min(len(shifted), int(note.length * seconds_per_tick * sample_rate), length - start)
            if n <= 0:
                continue
            envelope = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * sample_rate))
            out[start : start + n] += shifted[:n] * envelope * note.velocity / 127
    return np.stack([out, out]), voice.id


def song(index: int, out: str, seconds: float, sample_rate: int, seed: int, fonts: dict[str, str]) -> dict:
    """Make (or keep) song ``index``; returns its meta."""
    folder = Path(out) / f"song_{index:05d}"
    if (folder / "meta.json").is_file():
        return json.loads((folder / "meta.json").read_text())
    rng = np.random.default_rng([seed, index])
    s = generate_song(rng, seconds)  # whole 4-bar phrases: often longer than asked
    rendered = int((s.seconds + 1.0) * sample_rate)  # one second for the last notes to ring
    length = round(seconds * sample_rate)  # what was asked: cut, with a fade-out
    fade = np.ones(length)
    fade_n = min(length // 4, round(FADE_SECONDS * sample_rate))
    fade[length - fade_n :] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(fade_n) + 1) / fade_n)
    names = sorted(fonts)
    stems, meta_stems = {}, {}
    for name in STEMS:
        if name not in s.parts:
            continue
        font = names[int(rng.integers(len(names)))]
        drums = name == "drums"
        program = DRUM_KITS[int(rng.integers(len(DRUM_KITS)))] if drums else int(rng.choice(FAMILIES[name]))
        audio = render_part(s.parts[name], s, program, drums, Path(fonts[font]), sample_rate, rendered)
        voice = ""
        if name == "vocals":
            sung, voice = sing(s.parts[name], s, rng, sample_rate, rendered)
            if voice:
                audio = 0.35 * audio / max(np.abs(audio).max(), 1e-9) + sung / max(np.abs(sung).max(), 1e-9)
        audio = audio[..., :length]
        if not np.any(audio):
            continue
        tilt_db = float(rng.uniform(-4, 4))
        pan = 0.0 if name in ("drums", "bass", "vocals") else float(rng.uniform(-0.6, 0.6))
        rt60, wet = float(rng.uniform(0.3, 2.0)), float(rng.uniform(0.0, 0.35))
        level_db = LEVEL_DB[name] + float(rng.uniform(-3, 3))
        audio = np.stack([tilt(audio[c], sample_rate, tilt_db) for c in range(2)])
        audio = reverb(audio, rng, sample_rate, rt60, wet) * fade
        audio = audio * np.array([[np.sqrt((1 - pan) / 2)], [np.sqrt((1 + pan) / 2)]])  # constant-power pan
        audio = audio * 10 ** ((level_db - 12 - rms_db(audio)) / 20)  # stem RMS: level_db - 12 dBFS
        stems[name] = audio
        meta_stems[name] = {"soundfont": font, "program": program, "notes": len(s.parts[name]),
                            "level_db": round(level_db, 2), "pan": round(pan, 3), "tilt_db": round(tilt_db, 2),
                            "reverb_rt60": round(rt60, 3), "reverb_wet": round(wet, 3)}
        if name == "vocals":
            meta_stems[name]["voice"] = voice
    peak = np.abs(sum(stems.values())).max()
    scale = 0.9 / peak if peak > 0.9 else 1.0
    folder.mkdir(parents=True, exist_ok=True)
    mixture = np.zeros((2, length))
    for name, audio in stems.items():
        atomic_write_wav(folder / f"{name}.wav", audio * scale, sample_rate)
        written, _ = sf.read(folder / f"{name}.wav", dtype="float64", always_2d=True)
        mixture += written.T
    atomic_write_wav(folder / "mixture.wav", mixture, sample_rate, subtype="FLOAT")
    meta = {"index": index, "folder": folder.name, "sample_rate": sample_rate,
            "seconds": round(length / sample_rate, 4), "tempo_bpm": s.tempo_bpm, "key": KEYS[s.key_root], "mode": s.mode, "progression": list(s.progression), "groove": s.groove, "bars": s.bars,
            "stems": meta_stems}
    atomic_write_json(folder / "meta.json", meta)
    return meta


def build_music(out: str | Path, songs: int, seconds: float = 30.0, sample_rate: int = 44100, seed: int = 0,
                workers: int = 2, progress: Callable[[int], None] | None = None) -> list[dict]:
    """Write ``songs`` songs of about ``seconds`` each; returns their metas."""
    if songs < 1 or seconds <= 0:
        raise ValueError(f"songs must be at least 1 and seconds positive, got {songs} and {seconds}.")
    require("fluidsynth")
    fonts = {k: str(v) for k, v in require_soundfonts(1).items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metas = run_jobs(song, songs, str(out), seconds, sample_rate, seed, fonts, workers=workers, progress=progress)
    finish_manifest(out, metas, {"kind": "music", "songs": songs, "seconds": seconds, "sample_rate": sample_rate,
                                 "seed": seed, "soundfonts": fonts})
    return metas

