"""Seconds per training step of enhancement recipes, side by side in one run (the step of
``neuraudio.train.enhance.EnhancementModule``: ``training_terms``, the recipe's loss terms, backward, AdamW), on
random audio of the recipe's batch and crop, one thread:

    python benchmarks/train_step.py recipes/enhancement/denoise_stream_16k.yaml \
        recipes/enhancement/denoise_stream_16k_dualpath.yaml --steps 5

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


def build(recipe: Path) -> tuple[EnhancementModule, torch.optim.Optimizer, int, int]:
    config = yaml.safe_load(recipe.read_text())
    args = dict(config["model"]["init_args"])
    spec = args.pop("model")
    module_name, _, name = spec["class_path"].rpartition(".")
    model = getattr(importlib.import_module(module_name), name)(**spec.get("init_args", {}))
    weights = {k: v for k, v in args.items() if k.endswith("_weight")}
    module = EnhancementModule(model, **weights)
    data = config["data"]["init_args"]
    samples = round(data["crop_seconds"] * data["sample_rate"])
    return module, torch.optim.AdamW(model.parameters(), lr=1e-4), data["batch_size"], samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", type=Path, nargs="+")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per recipe (after one warm-up step)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    runs = [build(r) for r in args.recipes]
    seconds = [0.0] * len(runs)
    for step in range(args.steps + 1):
        for i, (module, optimizer, batch, samples) in enumerate(runs):
            noisy, clean = 0.1 * torch.randn(batch, 1, samples), 0.1 * torch.randn(batch, 1, samples)
            start = time.perf_counter()
            loss = module.terms(module.model.training_terms(noisy, clean))["loss"]
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
