"""Do a model's knobs matter? The ESR between its outputs at two distant settings, on the input of a data folder,
next to the same ESR for the reference effect (when given) and the model's error against each true output.

    python benchmarks/knob_sensitivity.py --model pretrained/compressor --data data/compressor/test \\
        --a threshold_db=-40 ratio=10 attack_ms=1 release_ms=50 --b threshold_db=-10 ratio=2 attack_ms=30 release_ms=500 \\
        --reference neuraudio.effects.dsp:Compressor
"""

from __future__ import annotations

import argparse
import importlib

import torch

import neuraudio
from neuraudio import metrics
from neuraudio.datasets.effects import EffectsFolder


def settings(pairs: list[str]) -> dict[str, float]:
    return {k: float(v) for k, v in (p.split("=", 1) for p in pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="an effects folder; only its input (and ignore.json) is used")
    parser.add_argument("--a", nargs="+", required=True, metavar="KNOB=VALUE")
    parser.add_argument("--b", nargs="+", required=True, metavar="KNOB=VALUE")
    parser.add_argument("--reference", help="module:Class of a reference Processor (e.g. the DSP effect)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = neuraudio.load(args.model)
    folder = EffectsFolder(args.data, model.sample_rate)
    mask, a, b = folder.mask[None], settings(args.a), settings(args.b)
    with torch.inference_mode():
        ya, yb = model.process(folder.x, **a), model.process(folder.x, **b)
        print(f"{args.model}: ESR between its outputs at A={a} and B={b}: {metrics.esr(ya, yb, mask):.4f}")
        if args.reference:
            module, name = args.reference.split(":")
            ref = getattr(importlib.import_module(module), name)(model.sample_rate)
            ra, rb = ref.process(folder.x, **a), ref.process(folder.x, **b)
            print(f"reference {name}: ESR between its outputs at A and B: {metrics.esr(ra, rb, mask):.4f}")
            print(f"model vs reference: ESR at A {metrics.esr(ya, ra, mask):.4f}, at B {metrics.esr(yb, rb, mask):.4f}")


if __name__ == "__main__":
    main()
