"""Echo-cancellation material: rooms, loudspeaker nonlinearity, bulk delay, clock drift, noise, three scenarios.

One clip (all at ``sample_rate``, float32 WAV so the arithmetic below holds to float32 rounding)::

    far   = far-end speech (what the loudspeaker is sent)             -> ref.wav
    echo  = rir_speaker * drift(delay(nonlinear(far)))                 (the loudspeaker in the room, heard at the mic)
    near  = rir_talker * near-end speech                               -> target.wav (what an ideal canceller keeps)
    mic   = echo + near + noise                                        -> mic.wav  (echo.wav, noise.wav beside it)

Parameters, each drawn per clip from its seed and written to ``meta.json``: a shoebox room (pyroomacoustics image
method; size 3-10 x 3-8 x 2.4-4 m, RT60 0.1-1.0 s), loudspeaker, talker and microphone positions; the loudspeaker
nonlinearity (none, soft clipping ``tanh(g x) / g``, hard clipping, or a memoryless polynomial); bulk delay
0-200 ms; clock drift -100..+100 ppm (the echo path runs at ``sample_rate * (1 + ppm 1e-6)``); the scenario
(far-end only: ``near = 0``; near-end only: ``far = 0``; double talk); signal-to-echo ratio -10..+10 dB (near
over echo, double talk) and SNR 0-40 dB (noise against the speech at the mic). ``meta.json`` also records
``echo_delay_samples``: bulk delay + the echo path's main peak, which a cross-correlation of ``ref`` and the echo
finds to the sample.

The pieces (:func:`shoebox_rir`, :func:`loudspeaker`, :func:`drift`, :func:`mix_at`) are plain functions so
DataModules can call them for on-the-fly augmentation.

    >>> build_echo("echo", clips=100, speech="speech_dir", noise="noise_dir", sample_rate=16000, seed=0)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import soxr
from scipy.signal import fftconvolve

from neuraudio.data.common import (
    atomic_write_json,
    atomic_write_wav,
    finish_manifest,
    run_jobs,
    rms_db,
)
from neuraudio.data.sources import AudioPool, ColoredNoisePool, require_audio

SCENARIOS = ("far_end_only", "near_end_only", "double_talk")
NONLINEARITIES = ("none", "soft_clip", "hard_clip", "polynomial")


def shoebox_rir(room_dim, rt60: float, source, mic, sample_rate: int) -> np.ndarray:
    """Impulse response from ``source`` to ``mic`` (metres) in a shoebox room with the given RT60 (s)."""
    import pyroomacoustics as pra

    # One thread: the threaded RIR builder sums in a varying order, and the build must be the same bytes every time.
    pra.constants.set("num_threads", 1)
    absorption, max_order = pra.inverse_sabine(rt60, room_dim)
    room = pra.ShoeBox(room_dim, fs=sample_rate, materials=pra.Material(absorption), max_order=min(max_order, 40))
    room.add_source(list(source))
    room.add_microphone(list(mic))
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def loudspeaker(x: np.ndarray, kind: str, amount: float) -> np.ndarray:
    """Memoryless loudspeaker nonlinearity; ``amount`` in 0..1 sets how hard it bites."""
    if kind == "none":
        return x
    if kind == "soft_clip":
        g = 1 + 9 * amount
        return np.tanh(g * x) / g
    if kind == "hard_clip":
        limit = 10 ** (-(1 + 17 * amount) / 20) * max(np.abs(x).max(), 1e-9)
        return np.clip(x, -limit, limit)
    if kind == "polynomial":  # y = x + a2 x^2 + a3 x^3 (even and odd distortion), a stable memoryless cubic
        peak = max(np.abs(x).max(), 1e-9)
        u = x / peak
        return peak * (u + 0.3 * amount * u**2 - 0.3 * amount * u**3)
    raise ValueError(f"unknown nonlinearity {kind!r}; use one of {', '.join(NONLINEARITIES)}.")


def drift(x: np.ndarray, ppm: float) -> np.ndarray:
    """Clock drift: ``x`` played by a converter running ``ppm`` parts per million fast (``ppm > 0``: the echo
    arrives compressed in time). Band-limited resampling (soxr)."""
    if ppm == 0:
        return x
    return soxr.resample(x, 1e6 + ppm, 1e6, quality="VHQ")


def mix_at(signal: np.ndarray, other: np.ndarray, ratio_db: float) -> np.ndarray:
    """``other`` scaled so that ``signal`` over ``other`` is ``ratio_db`` (by RMS); returns the scaled ``other``."""
    gain = 10 ** ((rms_db(signal) - rms_db(other) - ratio_db) / 20)
    return other * gain


def room_rirs(params: dict, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The drawn room's impulse responses: loudspeaker -> microphone and talker -> microphone."""
    rir_speaker = shoebox_rir(params["room_dim"], params["rt60"], params["loudspeaker_pos"], params["mic_pos"],
                              sample_rate)
    rir_talker = shoebox_rir(params["room_dim"], params["rt60"], params["talker_pos"], params["mic_pos"], sample_rate)
    return rir_speaker, rir_talker


def simulate(params: dict, far: np.ndarray, near: np.ndarray, noise: np.ndarray, sample_rate: int,
             rirs: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """One clip from drawn parameters and source signals (all the same length); returns every component.
    ``rirs``: the (loudspeaker, talker) impulse responses to use instead of the drawn room's (e.g. measured ones,
    or a room computed earlier: the image method is the slow part)."""
    length = len(far)
    rir_speaker, rir_talker = room_rirs(params, sample_rate) if rirs is None else rirs
    if params["scenario"] == "near_end_only":
        far = np.zeros(length)
    if params["scenario"] == "far_end_only":
        near = np.zeros(length)
    driven = loudspeaker(far, params["nonlinearity"], params["nonlinearity_amount"])
    delay = params["bulk_delay_samples"]
    delayed = np.concatenate([np.zeros(delay), driven])[:length]
    echo = fftconvolve(drift(delayed, params["drift_ppm"])[:length], rir_speaker)[:length]
    near_mic = fftconvolve(near, rir_talker)[:length]
    if params["scenario"] == "double_talk":
        echo = mix_at(near_mic, echo, params["ser_db"])
    speech = near_mic + echo
    noise = mix_at(speech, noise[:length], params["snr_db"]) if np.any(speech) else noise[:length] * 1e-3
    mic = echo + near_mic + noise
    peak = max(np.abs(mic).max(), np.abs(far).max(), 1e-9)
    scale = 0.9 / peak if peak > 0.9 else 1.0  # keep every file inside [-1, 1], the same gain on all parts
    return {"mic": mic * scale, "ref": far * scale, "target": near_mic * scale, "echo": echo * scale,
            "noise": noise * scale, "rir_speaker": rir_speaker,
            "echo_delay_samples": delay + int(np.argmax(np.abs(rir_speaker)))}


def sabine_min_rt60(room) -> float:
    """The shortest RT60 (s) Sabine's formula allows in a shoebox (every surface fully absorbing)."""
    x, y, z = room
    return 0.1611 * x * y * z / (2 * (x * y + y * z + x * z))


def draw_params(rng: np.random.Generator, sample_rate: int) -> dict:
    room = [float(rng.uniform(3, 10)), float(rng.uniform(3, 8)), float(rng.uniform(2.4, 4))]
    # A big room cannot be very dry: draw the RT60 from what the room allows (pyroomacoustics refuses the rest).
    rt60 = float(rng.uniform(max(0.1, 1.3 * sabine_min_rt60(room)), 1.0))

    def position():
        return [float(rng.uniform(0.5, d - 0.5)) for d in room]

    mic, speaker = position(), position()
    while np.linalg.norm(np.subtract(mic, speaker)) < 0.3:
        speaker = position()
    talker = position()
    return {
        "room_dim": room, "rt60": rt60, "mic_pos": mic, "loudspeaker_pos": speaker,
        "talker_pos": talker, "scenario": SCENARIOS[int(rng.integers(3))],
        "nonlinearity": NONLINEARITIES[int(rng.integers(4))], "nonlinearity_amount": float(rng.uniform(0, 1)),
        "bulk_delay_samples": int(rng.integers(0, int(0.2 * sample_rate) + 1)),
        "drift_ppm": float(rng.uniform(-100, 100)), "ser_db": float(rng.uniform(-10, 10)),
        "snr_db": float(rng.uniform(0, 40)),
    }


_POOLS: dict = {}


def _load_pools(speech: str, noise: str | None, sample_rate: int) -> None:
    """Worker initializer: each process reads the source folders once."""
    _POOLS["speech"] = AudioPool(speech, sample_rate, "speech")
    _POOLS["noise"] = AudioPool(noise, sample_rate, "noise") if noise else ColoredNoisePool(sample_rate)


def clip(index: int, out: str, sample_rate: int, seconds: float, seed: int) -> dict:
    """Make (or keep) clip ``index`` from the worker's pools; returns its meta."""
    speech, noise = _POOLS["speech"], _POOLS["noise"]
    folder = Path(out) / f"clip_{index:06d}"
    if (folder / "meta.json").is_file():
        return json.loads((folder / "meta.json").read_text())
    rng = np.random.default_rng([seed, index])
    params = draw_params(rng, sample_rate)
    length = int(seconds * sample_rate)
    far, far_src = speech.excerpt(rng, length)
    near, near_src = speech.excerpt(rng, length)
    noise_signal, noise_src = noise.excerpt(rng, length)
    parts = simulate(params, far, near, noise_signal, sample_rate)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("mic", "ref", "target", "echo", "noise"):
        atomic_write_wav(folder / f"{name}.wav", parts[name], sample_rate, subtype="FLOAT")
    meta = {**params, "index": index, "folder": folder.name, "sample_rate": sample_rate, "seconds": seconds,
            "echo_delay_samples": parts["echo_delay_samples"], "sources": {"far": far_src, "near": near_src,
                                                                           "noise": noise_src},
            "echo_rms_db": rms_db(parts["echo"]), "target_rms_db": rms_db(parts["target"]),
            "noise_rms_db": rms_db(parts["noise"])}
    atomic_write_json(folder / "meta.json", meta)
    return meta


def build_echo(out: str | Path, clips: int, speech: str | Path, noise: str | Path | None = None,
               sample_rate: int = 16000, seconds: float = 8.0, seed: int = 0, workers: int = 2,
               progress: Callable[[int], None] | None = None) -> list[dict]:
    """Write ``clips`` clips to ``out/clip_NNNNNN/{mic,ref,target}.wav + meta.json``.

    ``speech``: a folder of speech files (e.g. from ``neuraudio data speech``); ``noise``: a folder of noise files
    (default: generated colored noise)."""
    if clips < 1:
        raise ValueError(f"clips must be at least 1, got {clips}.")
    require_audio(speech, "speech")  # fail here, with a sentence, before any worker starts or folder is made
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = run_jobs(clip, clips, str(out), sample_rate, seconds, seed, workers=workers, initializer=_load_pools,
                       initargs=(str(speech), str(noise) if noise else None, sample_rate), progress=progress)
    finish_manifest(out, entries, {"kind": "echo", "clips": clips, "sample_rate": sample_rate, "seconds": seconds,
                                   "seed": seed, "speech": str(speech), "noise": str(noise) if noise else None})
    return entries
