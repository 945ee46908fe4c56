"""Shared pieces of the data builders: atomic writes, levels, spectral tilt, manifests.

Every builder writes each output file under a temporary name and renames it when complete, so an interrupted
build never leaves a partial file, and a rerun keeps what is complete (resumable).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import struct
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf


def process_pool(workers: int, initializer=None, initargs=()) -> ProcessPoolExecutor:
    """Worker processes started with "spawn": a forked child of a process whose torch/OpenMP thread pool is
    running can hang in its first parallel operation."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=initializer,
                               initargs=initargs)


def run_jobs(fn: Callable[..., dict], count: int, *args, workers: int = 2, initializer=None, initargs=(),
             progress: Callable[[int], None] | None = None) -> list[dict]:
    """``[fn(i, *args) for i in range(count)]`` on ``workers`` processes, in index order; ``progress(done)`` after
    each item. The builders' items are indexed and seeded by index, so the result does not depend on ``workers``."""
    results = []
    with process_pool(workers, initializer, initargs) as pool:
        for i, result in enumerate(pool.map(fn, range(count), *([a] * count for a in args))):
            results.append(result)
            if progress:
                progress(i + 1)
    return results


def float_wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """A 32-bit float WAV file (WAVE_FORMAT_IEEE_FLOAT with a fact chunk) of ``(channels, time)`` samples.

    Written here rather than by libsndfile, whose float WAVs carry a PEAK chunk with a timestamp: the same audio
    would give different bytes on every run, and builds must be byte-identical for a seed.
    """
    channels, frames = x.shape
    data = np.ascontiguousarray(x.T, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, sample_rate, sample_rate * channels * 4, channels * 4, 32)
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, frames)
              + b"data" + struct.pack("<I", len(data)) + data)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def atomic_write_wav(path: Path, x: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write ``x`` (``(time,)`` or ``(channels, time)``) as WAV (``PCM_16`` or ``FLOAT``) through a temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    data = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if subtype == "FLOAT":
        tmp.write_bytes(float_wav_bytes(data, sample_rate))
    else:
        sf.write(tmp, data.T, sample_rate, subtype=subtype, format="WAV")
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(obj, sort_keys=True) + "\n")
    os.replace(tmp, path)


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def level_to(x: np.ndarray, rms_dbfs: float, peak_dbfs: float = -1.0) -> np.ndarray:
    """Scale to an RMS of ``rms_dbfs``, or lower if the peak would pass ``peak_dbfs``."""
    gain = 10 ** ((rms_dbfs - rms_db(x)) / 20)
    peak = np.abs(x).max() * gain
    limit = 10 ** (peak_dbfs / 20)
    if peak > limit:
        gain *= limit / peak
    return x * gain


def tilt(x: np.ndarray, sample_rate: int, tilt_db: float, low_hz: float = 100.0, high_hz: float = 8000.0) -> np.ndarray:
    """Spectral tilt: gain rising linearly in log-frequency by ``tilt_db`` from ``low_hz`` to ``high_hz`` (0 dB at
    their geometric mean, flat beyond them). Zero-phase (FFT over the whole signal)."""
    if tilt_db == 0:
        return x
    n = len(x)
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    high = min(high_hz, sample_rate / 2)
    position = (np.log(np.clip(f, low_hz, high)) - np.log(low_hz)) / np.log(high / low_hz)
    gain = 10 ** (tilt_db * (position - 0.5) / 20)
    return np.fft.irfft(np.fft.rfft(x) * gain, n)


def finish_manifest(out: Path, entries: list[dict], build: dict) -> None:
    """``out/manifest.jsonl`` (entries by index) and ``out/build.json`` (the settings)."""
    lines = "".join(json.dumps(e, sort_keys=True) + "\n" for e in sorted(entries, key=lambda e: e["index"]))
    tmp = out / ".manifest.jsonl.part"
    tmp.write_text(lines)
    os.replace(tmp, out / "manifest.jsonl")
    atomic_write_json(out / "build.json", build)


def median_f0(x: np.ndarray, sample_rate: int) -> float:
    """Median autocorrelation pitch (Hz) of the loudest half of ``x``; 0 when unvoiced."""
    frame, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    lo, hi = int(sample_rate / 400), int(sample_rate / 60)
    energies, pitches = [], []
    for start in range(0, len(x) - frame, hop):
        f = x[start : start + frame] - x[start : start + frame].mean()
        ac = np.correlate(f, f, "full")[frame - 1 :]
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] > 0.5:
            energies.append(ac[0])
            pitches.append(sample_rate / lag)
    if not pitches:
        return 0.0
    loud = np.array(energies) >= np.median(energies)
    return float(np.median(np.array(pitches)[loud]))
