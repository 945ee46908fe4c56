"""``neuraudio train RECIPE.yaml [--data.root DIR] [--section.key value ...]``: LightningCLI underneath.

What it adds to plain LightningCLI: seed 0 by default; checkpoints in ``<default_root_dir>/checkpoints``
(``best.ckpt`` by validation loss, ``last.ckpt`` every epoch); CSV logs (and TensorBoard when installed) in
``<default_root_dir>/logs``; re-running in the same ``default_root_dir`` resumes from ``last.ckpt``, and says so
when the run is already complete; a mistyped option is one sentence naming the nearest valid one, not a usage dump.
Scaling is Lightning's own: ``--trainer.devices N --trainer.strategy ddp --trainer.num_nodes M``.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import io
import logging
import os
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import Sequence

from lightning.pytorch.callbacks import Callback, ModelCheckpoint
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


class TrainedSteps(Callback):
    """Counts the training batches this process ran (0 after resuming a run whose limits were already reached)."""

    def __init__(self):
        self.batches = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches += 1


TOP_LEVEL = ("config", "trainer", "model", "data", "optimizer", "lr_scheduler", "seed_everything", "ckpt_path",
             "print_config")


def _normalised(key: str) -> str:
    return ".".join(p for p in key.split(".") if p != "init_args")


def _section_class(recipe: dict, parts: Sequence[str]):
    """The class whose constructor the option ``parts`` (without its last name) belongs to, from the recipe."""
    if not parts:
        return None
    if parts[0] == "trainer":
        from lightning.pytorch import Trainer

        return Trainer if len(parts) == 1 else None
    node = recipe
    for part in parts:
        if isinstance(node, dict) and "class_path" in node:
            if part == "init_args":
                continue
            node = node.get("init_args") or {}
        node = node.get(part) if isinstance(node, dict) else None
    if not (isinstance(node, dict) and isinstance(node.get("class_path"), str)):
        return None
    module, _, name = node["class_path"].rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def explain_bad_option(message: str, argv: Sequence[str], recipe_path: str | None) -> str:
    """One sentence for LightningCLI's parse error ``message``: the option as the user spelled it and the nearest
    valid one (from the constructor the recipe names for that section)."""
    key = None
    unrecognized = re.search(r"unrecognized arguments: --([^\s=]+)", message)
    section, nested = re.search(r'Parser key "([^"]+)"', message), re.search(r"NestedArg\(key='([^']+)'", message)
    if unrecognized:
        key = unrecognized.group(1)
    elif section and nested:
        key = f"{section.group(1)}.{nested.group(1)}"
    if key is None:
        errors = [line.strip()[len("error:"):].strip() for line in message.splitlines()
                  if line.strip().startswith("error:")]
        detail = errors[-1] if errors else "see `neuraudio train RECIPE --help`"
        return f"the recipe's options do not validate ({detail.rstrip('.:')})."
    spelled = next((a.split("=")[0] for a in argv if a.startswith("--") and _normalised(a[2:].split("=")[0])
                    == _normalised(key)), f"--{key}")
    recipe = {}
    if recipe_path:
        import yaml

        with contextlib.suppress(OSError, yaml.YAMLError):
            recipe = yaml.safe_load(Path(recipe_path).read_text()) or {}
    parts = key.split(".")
    cls = _section_class(recipe, parts[:-1]) if isinstance(recipe, dict) else None
    if len(parts) == 1:
        candidates, where = list(TOP_LEVEL), "the train command"
    elif cls is not None:
        candidates = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "args", "kwargs")]
        where = cls.__name__
    else:
        return f"{spelled} is not an option of this recipe; see `neuraudio train RECIPE --help`."
    best = difflib.get_close_matches(parts[-1], candidates, n=1, cutoff=0.5)
    prefix = spelled.rsplit(".", 1)[0] + "." if "." in spelled else "--"
    if best:
        return f"{spelled} is not an option of {where}; did you mean {prefix}{best[0]}?"
    return f"{spelled} is not an option of {where} (its options: {', '.join(candidates)})."


class NeuraudioCLI(LightningCLI):
    resume_from: str | None = None

    def parse_arguments(self, parser, args) -> None:
        """LightningCLI's parsing (of ``args``: its own version warns whenever ``sys.argv`` also holds arguments,
        which it always does under `neuraudio train`), with a usage dump of 50 lines for a typo turned into one
        sentence."""
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured):
                self.config = parser.parse_args(args)
        except SystemExit as stop:
            if stop.code in (0, None):
                sys.stderr.write(captured.getvalue())
                raise
            argv = sys.argv[1:] if args is None else list(args)
            recipe = argv[argv.index("--config") + 1] if "--config" in argv[:-1] else None
            raise ValueError(explain_bad_option(captured.getvalue(), argv, recipe)) from None
        sys.stderr.write(captured.getvalue())

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


def _no_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in record.getMessage()


def run(argv: Sequence[str]) -> None:
    """Entry point of ``neuraudio train``: ``argv`` is ``[RECIPE.yaml, *overrides]``."""
    command = shlex.join(["neuraudio", "train", *argv])
    if argv and not argv[0].startswith("-"):
        recipe = Path(argv[0])
        if not recipe.is_file():
            raise FileNotFoundError(f"{recipe}: recipe file not found.")
        argv = ["--config", str(recipe), *argv[1:]]
    # Lightning advertises its cloud logger on every run (a rank_zero_info log record): drop that record only.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_no_advert)
    progress = TrainedSteps()
    with warnings.catch_warnings():
        # Lightning 2.6's CombinedLoader builds a torch LeafSpec, deprecated in recent torch: a FutureWarning on
        # every run that the user can do nothing about (Lightning-AI/pytorch-lightning#21326).
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                category=FutureWarning)
        cli = NeuraudioCLI(
            TaskModule, None, subclass_mode_model=True, subclass_mode_data=True,
            seed_everything_default=0, save_config_kwargs={"overwrite": True},
            trainer_defaults={"callbacks": [RunCheckpoint("best"), RunCheckpoint("last"), progress]},
            args=list(argv), run=False, parser_kwargs={"prog": "neuraudio train"},
        )
        cli.model.command = command
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.resume_from)
    if cli.resume_from and not progress.batches and cli.trainer.is_global_zero:
        trainer = cli.trainer
        limits = [f"max_epochs {trainer.max_epochs}"]
        timer = next((c for c in trainer.callbacks if type(c).__name__ == "Timer"), None)
        if timer is not None and timer._duration is not None:
            limits.append(f"max_time {timer._duration:.0f} s")
        print(f"neuraudio train: the run in {trainer.default_root_dir} is complete (step {trainer.global_step}, "
              f"epoch {trainer.current_epoch}; limits {', '.join(limits)}); nothing was trained. To train further, "
              "run the same command with a larger --trainer.max_time or --trainer.max_epochs; to start afresh, "
              "choose a new --trainer.default_root_dir.", file=sys.stderr)
