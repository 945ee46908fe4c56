"""``neuraudio export RUN_DIR OUT_DIR``: turn a training run into a model folder (config.json + safetensors + card).

The run's checkpoint is the user's own file; it is read with ``torch.load(weights_only=True)``, which refuses
arbitrary pickled objects. Lightning itself is not needed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from neuraudio import hub
from neuraudio.hub import ModelError
from neuraudio.stream.processor import Processor

CHECKPOINT_KEY = "neuraudio"


def find_checkpoint(run_dir, which: str = "best") -> Path:
    """``best.ckpt`` (lowest validation loss) of a run, or ``last.ckpt``, or a path given directly."""
    run = Path(run_dir)
    if which not in ("best", "last"):
        path = Path(which)
        if not path.is_file():
            raise ModelError(f"{path}: checkpoint file not found.")
        return path
    folder = run / "checkpoints"
    if not folder.is_dir():
        raise ModelError(f"{run}: not a training run (no checkpoints/ folder); pass --trainer.default_root_dir RUN to train.")
    for name in ([f"{which}.ckpt"] + (["last.ckpt"] if which == "best" else [])):
        if (folder / name).is_file():
            return folder / name
    raise ModelError(f"{folder}: holds no {which}.ckpt.")


def load_checkpoint(path) -> tuple[Processor, dict]:
    """Rebuild the Processor of a neuraudio training checkpoint; returns it and the checkpoint's facts."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad or unsafe file
        raise ModelError(f"{path}: cannot be read as a weights-only checkpoint ({str(err).splitlines()[0]}).") from None
    facts = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(facts, dict) or "class" not in facts:
        raise ModelError(f"{path}: not a neuraudio training checkpoint (no model class recorded).")
    model = hub.build(facts["class"], facts["kwargs"], str(path))
    prefix = "model."
    state = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    missing, unexpected = hub._key_mismatch(model, state)
    if missing or unexpected:
        raise ModelError(f"{path}: weights do not match {type(model).__name__} (missing: {', '.join(missing) or 'none'}; "
                         f"unexpected: {', '.join(unexpected) or 'none'}).")
    model.load_state_dict(state, strict=True)
    info = {
        "task": facts.get("task", "?"), "command": facts.get("command", ""),
        "train_seconds": round(float(facts.get("train_seconds", 0.0)), 1),
        "epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step"),
        "checkpoint": str(path),
    }
    for state_key, value in checkpoint.get("callbacks", {}).items():
        if state_key.startswith("RunCheckpoint") or state_key.startswith("ModelCheckpoint"):
            score = value.get("best_model_score")
            if score is not None:
                info["best_val_loss"] = float(score)
    return model.eval(), info


def export_run(run_dir, out_dir, name: str | None = None, which: str = "best", summary: str = "") -> Path:
    """Write a training run's checkpoint as a model folder; ``summary`` is the line `neuraudio models` shows
    (default: the class and the run's validation loss)."""
    path = find_checkpoint(run_dir, which)
    model, info = load_checkpoint(path)
    name = name or Path(out_dir).name
    metrics = {"val_loss": info["best_val_loss"]} if "best_val_loss" in info else {}
    if not summary:
        score = f", validation loss {metrics['val_loss']:.4g}" if metrics else ""
        summary = f"{type(model).__name__} exported from {Path(run_dir).name} (step {info['global_step']}{score})"
    card = (f"# {name}\n\n{summary}\n\nExported from `{path}` (epoch {info['epoch']}, step {info['global_step']}).\n\n"
            f"- task: {info['task']}\n- trained with: `{info['command']}`\n- training time: {info['train_seconds']} s\n"
            f"- validation loss: {metrics.get('val_loss', 'n/a')}\n\n"
            "Fill in: the data (source, licence, duration), and metrics on held-out data from `neuraudio eval`.\n")
    return hub.save_folder(model, out_dir, name=name, task=info["task"], training=info, metrics=metrics, card=card,
                           summary=summary)
