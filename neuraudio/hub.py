"""The model registry: names a user can pass to :func:`neuraudio.load`, and what each one is.

Built-in entries are classical processors with no weights (constructor kwargs only). Pretrained model folders
(``config.json`` + ``model.safetensors`` + model card) join this registry with the training machinery.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from neuraudio.stream.processor import Processor


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
}


def _import(path: str) -> type:
    module, _, name = path.partition(":")
    if not module.startswith("neuraudio."):
        raise ModelError(f"model class {path} is outside the neuraudio package, which loading does not allow.")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ModelError(f"model class {path} does not exist in this version of neuraudio.") from None
    if not (isinstance(cls, type) and issubclass(cls, Processor)):
        raise ModelError(f"{path} is not a neuraudio Processor.")
    return cls


def build(entry: Entry) -> Processor:
    return _import(entry.cls)(**entry.kwargs).eval()


def load(name: str) -> Processor:
    """Load a registered model by name: an ``nn.Module`` in eval mode, on the CPU."""
    if name in BUILTIN:
        return build(BUILTIN[name])
    known = ", ".join(sorted(BUILTIN))
    raise ModelError(f"unknown model {name!r}; known models: {known}.")


def list_models() -> list[dict[str, Any]]:
    """One dict per registered model: name, task, summary, sample_rate, latency, channels and knobs."""
    rows = []
    for entry in BUILTIN.values():
        model = build(entry)
        rows.append({
            "name": entry.name,
            "task": entry.task,
            "summary": entry.summary,
            "sample_rate": model.sample_rate,
            "latency": model.latency,
            "stream_latency": model.stream(block_size=1).latency,
            "channels": model.in_channels,
            "knobs": {k: vars(spec) for k, spec in model.knobs.items()},
        })
    return rows
