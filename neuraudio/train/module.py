"""LightningModules: a plain neuraudio Processor inside, one ``_common_step`` per task, every loss term logged.

The optimizer and learning-rate scheduler come from the recipe (LightningCLI's ``optimizer:`` and
``lr_scheduler:`` sections); the checkpoint records the Processor's class and constructor kwargs so that
``neuraudio export`` can rebuild it without unpickling anything.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from neuraudio.stream.processor import Processor
from neuraudio.train import losses

CHECKPOINT_KEY = "neuraudio"


class TaskModule(L.LightningModule):
    """Base: subclasses implement ``_common_step(batch, stage) -> {"loss": ..., other terms}``."""

    task = "?"

    def __init__(self, model: Processor, init_from: str | None = None):
        super().__init__()
        if not isinstance(model, Processor):
            raise ValueError(f"model must be a neuraudio Processor, got {type(model).__name__}.")
        self.model = model
        if init_from:
            # Start from an exported model folder (safetensors, strict): how a committed snapshot resumes training
            # on a machine without the run's checkpoints.
            from neuraudio.hub import load_folder, shipped

            if not Path(init_from).exists() and init_from in shipped():
                init_from = str(shipped()[init_from])  # a shipped model's name: fine-tune it

            # A model with a wider LSTM than the folder's, or extra parts that start as the identity, starts from it
            # by function-preserving widening.
            state = load_folder(init_from).state_dict()
            own = self.model.state_dict()
            shapes_differ = any(k in state and state[k].shape != v.shape for k, v in own.items())
            if (shapes_differ or own.keys() - state.keys()) and hasattr(self.model, "load_narrower"):
                self.model.load_narrower(state)
            else:
                self.model.load_state_dict(state, strict=True)
        self.command = shlex.join(["neuraudio", *sys.argv[1:]])  # recorded in checkpoints; `neuraudio train` sets it
        self._seconds_before = 0.0      # training time of earlier runs this one resumed
        self._started = time.perf_counter()

    def _common_step(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        terms = self._common_step(batch, "train")
        size = next(iter(batch.values())).shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, prog_bar=False, batch_size=size)
        self.log("loss", terms["loss"].detach(), prog_bar=True, logger=False, batch_size=size)
        return terms["loss"]

    def validation_step(self, batch, batch_idx):
        terms = self._common_step(batch, "val")
        size = next(iter(batch.values())).shape[0]
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, prog_bar=False, batch_size=size, sync_dist=True)
        self.log("val_loss", terms["loss"], prog_bar=True, batch_size=size, sync_dist=True)

    def on_fit_start(self) -> None:
        self._started = time.perf_counter()

    def train_seconds(self) -> float:
        """Training time of this run and of the runs it resumed, in seconds."""
        return self._seconds_before + time.perf_counter() - self._started

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "task": self.task, **self.model.config,
            "command": self.command,
            "train_seconds": self.train_seconds(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._seconds_before = float(checkpoint.get(CHECKPOINT_KEY, {}).get("train_seconds", 0.0))


class EffectModule(TaskModule):
    """Effect modelling: ESR (pre-emphasised) + DC loss, optional MR-STFT, masked by the data's ignore ranges.

    Args:
        model: the Processor to train (its knobs must be the data's knobs).
        init_from: a model folder (or a shipped model's name) whose weights start the training (same class and kwargs).
        esr_weight, dc_weight, mrstft_weight: loss weights.
        pre_emphasis: coefficient of the 1 - a z^-1 filter before ESR.
        esr_per_item: average each crop's own ESR instead of pooling the batch (for data whose takes differ in
            level by tens of dB, e.g. compressors at random settings).
        knobs_from_data: give a model built without knobs the knobs the capture's ``knobs.json`` files set (each
            ranging over the captured values, default their median; unit ``0..1`` when they lie in it), so one
            command trains a knob capture without spelling its knobs out (``recipes/effects/lstm_knobs.yaml``).
    """

    task = "effect"

    def __init__(self, model: Processor, esr_weight: float = 1.0, dc_weight: float = 1.0, mrstft_weight: float = 0.0,
                 pre_emphasis: float = 0.85, init_from: str | None = None, esr_per_item: bool = False,
                 knobs_from_data: bool = False):
        if knobs_from_data and init_from:
            raise ValueError("knobs_from_data builds a new model's knobs; a model from init_from already has its own.")
        super().__init__(model, init_from)
        self.knobs_from_data = knobs_from_data
        self.esr_per_item = esr_per_item
        self.esr_weight, self.dc_weight, self.mrstft_weight = esr_weight, dc_weight, mrstft_weight
        self.pre_emphasis = pre_emphasis

    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None)
        folder = getattr(data, "folder", None)
        if folder is None:
            return
        if data.sample_rate != self.model.sample_rate:
            raise ValueError(f"the data is read at {data.sample_rate} Hz but the model runs at "
                             f"{self.model.sample_rate} Hz; set data.sample_rate to the model's rate.")
        if self.knobs_from_data and folder.knob_names and not self.model.knobs:
            self.model = _with_knobs(self.model, folder)
        if sorted(folder.knob_names) != sorted(self.model.knobs):
            raise ValueError(f"the takes set knobs {folder.knob_names or 'none'} but the model has knobs "
                             f"{sorted(self.model.knobs) or 'none'}.")
        self.knob_names = folder.knob_names

    def _common_step(self, batch, stage):
        x, y, mask = batch["input"], batch["target"], batch["mask"]
        names = getattr(self, "knob_names", sorted(self.model.knobs))
        knobs = {name: batch["knobs"][:, i, None].expand(-1, x.shape[-1]) for i, name in enumerate(names)}
        y_hat = self.model.process(x, **knobs)
        terms = {"esr": losses.esr(y_hat, y, mask, self.pre_emphasis, per_item=self.esr_per_item),
                 "dc": losses.dc_loss(y_hat, y, mask)}
        loss = self.esr_weight * terms["esr"] + self.dc_weight * terms["dc"]
        if self.mrstft_weight:
            terms["mrstft"] = losses.mrstft(y_hat * mask, y * mask)
            loss = loss + self.mrstft_weight * terms["mrstft"]
        if stage == "val":
            terms["esr_raw"] = losses.esr(y_hat, y, mask, None)
        terms["loss"] = loss
        return terms


def _with_knobs(model: Processor, folder) -> Processor:
    """The same model class and arguments, with the knobs the capture's takes set."""
    kwargs = model.config["kwargs"]
    if "knobs" not in kwargs:
        raise ValueError(f"{type(model).__name__} takes no knobs; use a model with a `knobs` argument.")
    knobs = {}
    for name in folder.knob_names:
        values = sorted({float(knobs_of_take[name]) for _, _, knobs_of_take in folder.takes})
        low, high = values[0], values[-1]
        if low == high:
            raise ValueError(f"knob {name} is {low:g} in every take: a knob needs at least two captured settings.")
        knobs[name] = {"default": values[len(values) // 2], "minimum": low, "maximum": high,
                       "unit": "0..1" if 0.0 <= low and high <= 1.0 else "",
                       "doc": f"from the capture's knobs.json ({', '.join(f'{v:g}' for v in values)} captured)"}
    return type(model)(**{**kwargs, "knobs": knobs})
