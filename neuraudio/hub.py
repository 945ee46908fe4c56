"""Model registry and the pretrained-model folder format.

A model folder holds:

* ``config.json``: ``format_version`` (1), ``name``, ``task``, ``class`` (``"neuraudio.pkg.module:Class"``), ``kwargs``
  (constructor arguments), ``sample_rate``, ``latency``, ``knobs``, ``weights_sha256``, ``training`` (data, command,
  duration) and ``metrics``;
* ``model.safetensors``: the state dict (its sha256 is checked against the config);
* ``README.md``: the model card.

Loading never unpickles: weights are read with safetensors, the config with ``json``, and only classes inside the
neuraudio package can be named. :func:`load` accepts a registered name (built-in processors, then the folders of
``pretrained/``) or a path to a folder.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from neuraudio.audio import give_default_mode
from neuraudio.stream.processor import Processor, stream_latency

FORMAT_VERSION = 1
CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"


class ModelError(Exception):
    """A model cannot be found or loaded; the message is one sentence naming it."""


@dataclass(frozen=True)
class Entry:
    name: str
    task: str
    cls: str                      # "package.module:ClassName"
    kwargs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


BUILTIN = {
    "spectral-gate": Entry(
        "spectral-gate", "effect", "neuraudio.effects.spectral_gate:SpectralGate",
        {"sample_rate": 48000, "n_fft": 1024, "hop": 256, "window": "hann"},
        "spectral noise gate with attack/release across frames (classical DSP, no weights)",
    ),
    "hpss": Entry(
        "hpss", "separation", "neuraudio.separation.hpss:HPSS",
        {"sample_rate": 44100, "n_fft": 2048, "hop": 512, "harmonic_frames": 17, "percussive_bins": 17,
         "power": 2.0, "chunk_seconds": 10.0},
        "harmonic/percussive separation by median filtering with soft masks, non-causal in 10 s chunks "
        "(classical DSP, no weights)",
    ),
    "aec-linear": Entry(
        "aec-linear", "echo", "neuraudio.aec.linear:LinearAEC",
        {"sample_rate": 16000, "hop": 160, "partitions": 40, "max_delay_ms": 250.0, "margin": 2, "step": 1.0},
        "linear echo canceller: GCC-PHAT bulk delay, two-path frequency-domain adaptive filter (400 ms), per-bin "
        "residual echo subtraction and suppressor; inputs mic and ref, 16 kHz, 10 ms latency (classical DSP, no "
        "weights)",
    ),
    "denoise-mmse": Entry(
        "denoise-mmse", "enhancement", "neuraudio.enhancement.mmse:LogMMSE",
        {"sample_rate": 16000, "n_fft": 512, "hop": 128, "minimum_seconds": 1.5},
        "speech denoiser: log-MMSE gain with an MCRA noise tracker, causal, 16 kHz, 24 ms latency "
        "(classical DSP, no weights)",
    ),
    "pitch-shift": Entry(
        "pitch-shift", "effect", "neuraudio.vocoding.pitch_shift:PitchShift",
        {"sample_rate": 48000, "n_fft": 2048, "hop": 512},
        "streaming phase-vocoder pitch shifter, -12..+12 semitones, identity phase locking, 48 kHz, 32 ms latency "
        "(classical DSP, no weights)",
    ),
    "griffin-lim": Entry(
        "griffin-lim", "vocoder", "neuraudio.vocoding.griffin_lim:GriffinLim",
        {"sample_rate": 22050, "n_fft": 1024, "hop": 256, "n_mels": 80, "fmin": 0.0, "fmax": 8000.0, "n_iter": 32,
         "momentum": 0.99, "context_frames": 16, "chunk_seconds": 4.0},
        "80-band log-mel analysis and fast Griffin-Lim resynthesis (32 iterations, momentum 0.99), 22.05 kHz; "
        "synthesize(mel) for mel frames from outside (classical DSP, no weights)",
    ),
    "griffin-lim-16k": Entry(
        "griffin-lim-16k", "vocoder", "neuraudio.vocoding.griffin_lim:GriffinLim",
        {"sample_rate": 16000, "n_fft": 512, "hop": 128, "n_mels": 80, "fmin": 0.0, "fmax": 8000.0, "n_iter": 32,
         "momentum": 0.99, "context_frames": 16, "chunk_seconds": 4.0},
        "griffin-lim at the mel settings of apnet-16k (16 kHz, n_fft 512, hop 128, 80 bands): the floor the "
        "neural vocoders are measured against (classical DSP, no weights)",
    ),
}


def pretrained_root() -> Path:
    """Where shipped models live: ``neuraudio/pretrained`` in an installed wheel, ``pretrained/`` in a checkout."""
    installed = Path(__file__).resolve().parent / "pretrained"
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "pretrained"


def shipped() -> dict[str, Path]:
    root = pretrained_root()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / CONFIG).is_file()}


def _import(path: str, where: str) -> type:
    module, _, name = str(path).partition(":")
    if not (module == "neuraudio" or module.startswith("neuraudio.")) or not name:
        raise ModelError(f"{where}: class {path!r} is not a neuraudio model class (module:Class inside neuraudio).")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ModelError(f"{where}: class {path} does not exist in this version of neuraudio.") from None
    if not (isinstance(cls, type) and issubclass(cls, Processor)):
        raise ModelError(f"{where}: {path} is not a neuraudio Processor.")
    return cls


def build(cls_path: str, kwargs: dict[str, Any], where: str) -> Processor:
    cls = _import(cls_path, where)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ModelError(f"{where}: cannot build {cls.__name__} from its kwargs ({err}).") from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG
    if not path.is_file():
        raise ModelError(f"{folder}: not a model folder (no {CONFIG}).")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: not valid JSON ({err}).") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: must hold a JSON object.")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(f"{path}: format_version {version!r} is not supported (this neuraudio reads {FORMAT_VERSION}).")
    for key in ("class", "kwargs", "weights_sha256"):
        if key not in config:
            raise ModelError(f"{path}: the key {key!r} is missing.")
    return config


def load_folder(folder) -> Processor:
    """Load a model folder strictly (hash checked, every tensor present, nothing extra); never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ModelError(f"{folder}: {WEIGHTS} is missing.")
    if sha256(weights) != config["weights_sha256"]:
        raise ModelError(f"{weights}: sha256 does not match the one in {CONFIG} (a corrupted or replaced file).")
    model = build(config["class"], config["kwargs"], str(folder / CONFIG))
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"{weights}: not a valid safetensors file ({err}).") from None
    missing, unexpected = _key_mismatch(model, state)
    if missing or unexpected:
        raise ModelError(f"{weights}: tensors do not match {type(model).__name__} "
                         f"(missing: {', '.join(missing) or 'none'}; unexpected: {', '.join(unexpected) or 'none'}).")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelError(f"{weights}: tensor shapes do not match {type(model).__name__} ({str(err).splitlines()[-1].strip()}).") from None
    return model.eval()


def _key_mismatch(model: torch.nn.Module, state: dict) -> tuple[list[str], list[str]]:
    expected = set(model.state_dict())
    return sorted(expected - set(state)), sorted(set(state) - expected)


def save_folder(model: Processor, folder, *, name: str, task: str, training: dict | None = None,
                metrics: dict | None = None, card: str | None = None, summary: str = "") -> Path:
    """Write ``model`` as a model folder (atomically: a temporary folder renamed into place); ``summary`` is the
    one line `neuraudio models` shows."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ModelError(f"{folder}: already exists and is not empty; choose a new folder.")
    config = model.config
    try:
        json.dumps(config["kwargs"])
    except TypeError as err:
        raise ModelError(f"{type(model).__name__}: its constructor arguments cannot be saved as JSON ({err}).") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        give_default_mode(tmp, folder=True)  # mkdtemp makes it 0700; a model folder is shared like any other
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS))
        give_default_mode(tmp / WEIGHTS)  # safetensors 0.8 writes it 0600, unlike config.json beside it
        full = {
            "format_version": FORMAT_VERSION, "name": name, "task": task, "summary": summary,
            "class": config["class"], "kwargs": config["kwargs"],
            "sample_rate": model.sample_rate, "latency": model.latency,
            "inputs": model.input_channels(), "stems": list(model.stems), "context": model.context,
            "knobs": {k: vars(spec) for k, spec in model.knobs.items()},
            "weights_sha256": sha256(tmp / WEIGHTS),
            "training": training or {}, "metrics": metrics or {},
        }
        (tmp / CONFIG).write_text(json.dumps(full, indent=2) + "\n")
        (tmp / CARD).write_text(card or f"# {name}\n\nModel card: to be written (task: {task}).\n")
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
        raise
    return folder


def load(name_or_path) -> Processor:
    """Load a model: a built-in name, a shipped pretrained name, or a path to a model folder.

    Returns an ``nn.Module`` in eval mode, on the CPU.
    """
    text = str(name_or_path)
    if text in BUILTIN:
        entry = BUILTIN[text]
        return build(entry.cls, entry.kwargs, text).eval()
    if text in shipped():
        return load_folder(shipped()[text])
    path = Path(text)
    if path.is_dir():
        return load_folder(path)
    if path.is_file():
        raise ModelError(f"{path}: neuraudio loads model folders (config.json + model.safetensors), never pickled or "
                         "checkpoint files; turn a training run into a folder with `neuraudio export`.")
    known = ", ".join(sorted([*BUILTIN, *shipped()]))
    raise ModelError(f"unknown model {text!r}: not a known name ({known}) nor a model folder.")


def _row(name: str, model: Processor, task: str, summary: str) -> dict[str, Any]:
    return {
        "name": name, "task": task, "summary": summary,
        "sample_rate": model.sample_rate, "latency": model.latency,
        "stream_latency": stream_latency(model),  # (a query-bound model cannot open a stream before its query)
        "takes_query": bool(model.takes_query),
        "channels": model.in_channels,
        "inputs": model.input_channels(), "stems": list(model.stems),
        "knobs": {k: vars(spec) for k, spec in model.knobs.items()},
    }


def list_models() -> list[dict[str, Any]]:
    """One dict per available model: name, task, summary, sample_rate, latency, stream_latency, channels, knobs."""
    return [describe(name) for name in [*BUILTIN, *shipped()]]


def describe(name_or_path) -> dict[str, Any]:
    """What :func:`list_models` gives for one model (a name or a model folder), plus, for a folder, its path, class,
    parameter count, training record and measured metrics."""
    text = str(name_or_path)
    model = load(text)
    if text in BUILTIN:
        entry = BUILTIN[text]
        return {**_row(text, model, entry.task, entry.summary), "class": entry.cls, "parameters": 0}
    folder = shipped()[text] if text in shipped() else Path(text)
    config = read_config(folder)
    row = _row(config.get("name") or folder.name, model, config.get("task", model.task or "?"),
               config.get("summary", ""))
    row.update({"path": str(folder), "class": config["class"],
                "parameters": sum(p.numel() for p in model.parameters()),
                "training": config.get("training", {}), "metrics": config.get("metrics", {})})
    return row
