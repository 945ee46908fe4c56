"""``neuraudio train RECIPE.yaml [--data.root DIR] [--section.key value ...]``: LightningCLI underneath.

What it adds to plain LightningCLI: seed 0 by default; checkpoints in ``<default_root_dir>/checkpoints``
(``best.ckpt`` by validation loss, ``last.ckpt`` every epoch); CSV logs (and TensorBoard when installed) in
``<default_root_dir>/logs``; re-running in the same ``default_root_dir`` resumes from ``last.ckpt``.
Scaling is Lightning's own: ``--trainer.devices N --trainer.strategy ddp --trainer.num_nodes M``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger

from neuraudio.train.module import TaskModule


class RunCheckpoint(ModelCheckpoint):
    """One checkpoint file, overwritten in ``<default_root_dir>/checkpoints``: ``best`` keeps the lowest
    ``val_loss``, ``last`` the latest epoch (a separate callback: Lightning 2.6's ``save_last`` only writes when a
    top-k checkpoint was written in the same step, which would make resuming lose epochs)."""

    def __init__(self, which: str):
        monitor = "val_loss" if which == "best" else None
        super().__init__(monitor=monitor, mode="min", filename=which, save_top_k=1, enable_version_counter=False)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = os.path.join(trainer.default_root_dir, "checkpoints")
        super().setup(trainer, pl_module, stage)


def _loggers(root: str) -> list:
    loggers = [CSVLogger(root, name="logs")]
    try:
        from lightning.pytorch.loggers import TensorBoardLogger
        import tensorboard  # noqa: F401  (optional)

        loggers.append(TensorBoardLogger(root, name="logs"))
    except ImportError:
        pass
    return loggers


class NeuraudioCLI(LightningCLI):
    resume_from: str | None = None

    def before_instantiate_classes(self) -> None:
        config = self.config
        root = config.trainer.default_root_dir or os.getcwd()
        config.trainer.default_root_dir = root
        last = Path(root) / "checkpoints" / "last.ckpt"
        if last.is_file():
            print(f"neuraudio train: resuming from {last}", file=sys.stderr)
            self.resume_from = str(last)

    def instantiate_trainer(self, **kwargs):
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = _loggers(trainer_config["default_root_dir"])
        return super().instantiate_trainer(**kwargs)


def run(argv: Sequence[str]) -> None:
    """Entry point of ``neuraudio train``: ``argv`` is ``[RECIPE.yaml, *overrides]``."""
    if argv and not argv[0].startswith("-"):
        recipe = Path(argv[0])
        if not recipe.is_file():
            raise FileNotFoundError(f"{recipe}: recipe file not found.")
        argv = ["--config", str(recipe), *argv[1:]]
    cli = NeuraudioCLI(
        TaskModule, None, subclass_mode_model=True, subclass_mode_data=True,
        seed_everything_default=0, save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [RunCheckpoint("best"), RunCheckpoint("last")]},
        args=list(argv), run=False, parser_kwargs={"prog": "neuraudio train"},
    )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.resume_from)
