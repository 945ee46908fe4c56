"""Real-time cost of the effect models, side by side in one run, on one CPU thread.

For each model: streaming compute time per host block (p50 / p99 / max, and p99 as a share of the block's
duration) through ``Processor.stream`` with a knob automated every block, and the offline real-time factor.
Models: the shipped ones in pretrained/ (if any), a model folder given with --model, and untrained reference
architectures (the cost does not depend on the weights).

    python benchmarks/effects.py [--block-size 128] [--seconds 20] [--model FOLDER ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import neuraudio
from neuraudio import hub
from neuraudio.effects.gain import GatedGainEffect
from neuraudio.effects.recurrent import RecurrentEffect
from neuraudio.effects.tcn import TCNEffect

GAIN = {"gain": {"default": 0.5, "minimum": 0.0, "maximum": 1.0, "unit": "0..1"}}
COMP = {
    "threshold_db": {"default": -20.0, "minimum": -60.0, "maximum": 0.0, "unit": "dBFS"},
    "ratio": {"default": 4.0, "minimum": 1.0, "maximum": 20.0, "unit": ":1", "scale": "log"},
    "attack_ms": {"default": 5.0, "minimum": 0.1, "maximum": 100.0, "unit": "ms", "scale": "log"},
    "release_ms": {"default": 100.0, "minimum": 10.0, "maximum": 1000.0, "unit": "ms", "scale": "log"},
}
REFERENCE = {
    "lstm32-film-1knob@44.1k": lambda: RecurrentEffect(44100, 32, GAIN, "film"),
    "lstm32-concat-1knob@44.1k": lambda: RecurrentEffect(44100, 32, GAIN, "concat"),
    "lstm32-film-4knobs@48k": lambda: RecurrentEffect(48000, 32, COMP, "film"),
    "tcn16x10-film-1knob@48k": lambda: TCNEffect(48000, 16, 3, 10, 1, GAIN),
    "gated-gain64-4knobs@48k": lambda: GatedGainEffect(48000, 64, 16, COMP),
}


def measure(model, block: int, seconds: float) -> dict:
    sr = model.sample_rate
    x = 0.3 * torch.randn(1, int(seconds * sr), generator=torch.Generator().manual_seed(0))
    stream = model.stream(block_size=block)
    names = list(model.knobs)
    times = []
    with torch.inference_mode():
        for i, b in enumerate(x.split(block, -1)):
            if names:  # a knob moving every block: the glide runs all the time
                spec = model.knobs[names[0]]
                stream.set_knobs(**{names[0]: spec.minimum + (spec.maximum - spec.minimum) * ((i // 50) % 2)})
            t0 = time.perf_counter()
            stream.process(b)
            times.append(time.perf_counter() - t0)
        t = torch.tensor(times[100:], dtype=torch.float64)  # warm-up excluded
        t0 = time.perf_counter()
        model.process(x)
        offline = time.perf_counter() - t0
    budget = block / sr
    return {"block": block, "sample_rate": sr, "budget_ms": budget * 1e3, "p50_ms": float(t.median()) * 1e3,
            "p99_ms": float(t.quantile(0.99)) * 1e3, "max_ms": float(t.max()) * 1e3,
            "p99_frac": float(t.quantile(0.99)) / budget, "offline_rtf": offline / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model", action="append", default=[], help="a model folder or name (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = {name: (lambda n=name: neuraudio.load(n)) for name in hub.shipped()}
    models.update({m: (lambda m=m: neuraudio.load(m)) for m in args.model})
    models.update(REFERENCE)
    rows = {name: measure(make().eval(), args.block_size, args.seconds) for name, make in models.items()}
    if args.json:
        print(json.dumps(rows))
        return
    print(f"streaming at {args.block_size}-sample blocks, 1 thread, torch {torch.__version__}, knob moving")
    print(f"{'model':28s} {'budget ms':>9s} {'p50 ms':>7s} {'p99 ms':>7s} {'max ms':>7s} {'p99 %':>6s} {'offline RTF':>11s}")
    for name, r in rows.items():
        print(f"{name:28s} {r['budget_ms']:9.3f} {r['p50_ms']:7.3f} {r['p99_ms']:7.3f} {r['max_ms']:7.3f} "
              f"{100 * r['p99_frac']:5.1f}% {r['offline_rtf']:11.4f}")


if __name__ == "__main__":
    main()
