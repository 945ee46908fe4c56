"""Seconds per training step of enhancement and echo-cancellation recipes, side by side in one run (the step of
``neuraudio.train.enhance.EnhancementModule``: ``training_terms``, the recipe's loss terms, backward, AdamW), on
random audio of the recipe's batch and crop, one thread:

    python benchmarks/train_step.py recipes/enhancement/denoise_stream_16k.yaml \
        recipes/enhancement/denoise_stream_16k_dualpath.yaml --steps 5
    python benchmarks/train_step.py recipes/aec/aec_16k.yaml \
        --set blocks=3 fine_channels=16 complex_masks=true echo_weight=0.9 gain_weight=0.5

``--set NAME=VALUE``: a model argument or loss weight for every recipe, as the recipe's command line would give it
(``--model.init_args.model.init_args.NAME`` or ``--model.init_args.NAME``). An echo recipe's batches are what
``EchoDataModule`` gives with ``linear_stage: true`` (the linear stage's ``e`` and ``y`` precomputed, so not timed).

Recipes alternate step by step, so a machine whose load changes during the run slows all of them alike.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import torch
import yaml

from neuraudio.train.enhance import EnhancementModule


def build(recipe: Path, overrides: dict) -> tuple[EnhancementModule, torch.optim.Optimizer, int, int]:
    config = yaml.safe_load(recipe.read_text())
    args = dict(config["model"]["init_args"])
    spec = args.pop("model")
    module_name, _, name = spec["class_path"].rpartition(".")
    model_args = dict(spec.get("init_args", {}))
    model_args.update({k: v for k, v in overrides.items() if not k.endswith("_weight")})
    model = getattr(importlib.import_module(module_name), name)(**model_args)
    weights = {k: v for k, v in {**args, **overrides}.items() if k.endswith("_weight")}
    module = EnhancementModule(model, **weights)
    data = config["data"]["init_args"]
    samples = round(data["crop_seconds"] * data["sample_rate"])
    return module, torch.optim.AdamW(model.parameters(), lr=1e-4), data["batch_size"], samples


def random_batch(model, batch: int, samples: int) -> dict[str, torch.Tensor]:
    """A batch of random audio as the recipe's data module gives it: ``noisy`` and ``clean``, or for an echo
    canceller (inputs ``mic`` and ``ref``) the microphone, reference, target, the linear stage's ``e`` and ``y``
    and the echo-free microphone."""
    noise = lambda: 0.1 * torch.randn(batch, 1, samples)  # noqa: E731
    if "ref" in getattr(model, "inputs", {}):
        return {"mic": noise(), "ref": noise(), "target": noise(), "e": noise(), "y": noise(), "echoless": noise()}
    return {"noisy": noise(), "clean": noise()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", type=Path, nargs="+")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per recipe (after one warm-up step)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="a model argument or loss weight for every recipe (YAML values: 3, true, 0.5)")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes NAME=VALUE, got {item!r}.")
        overrides[name] = yaml.safe_load(value)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    runs = [build(r, overrides) for r in args.recipes]
    seconds = [0.0] * len(runs)
    for step in range(args.steps + 1):
        for i, (module, optimizer, batch, samples) in enumerate(runs):
            start = time.perf_counter()
            loss = module.terms(module.model.training_terms(**random_batch(module.model, batch, samples)))["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step:
                seconds[i] += time.perf_counter() - start
    first = seconds[0] / args.steps
    print(f"{'recipe':55s} {'params':>9s} {'s/step':>7s} {'ratio':>6s}")
    for recipe, (module, _, batch, samples), total in zip(args.recipes, runs, seconds):
        params = sum(p.numel() for p in module.model.parameters())
        print(f"{str(recipe):55s} {params:9d} {total / args.steps:7.3f} {total / args.steps / first:6.2f}")


if __name__ == "__main__":
    main()
