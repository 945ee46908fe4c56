"""A training run's learning curve: a validation metric against training hours (from RUN/logs/*/metrics.csv).

The hours come from ``val/train_hours`` where the run logged it; otherwise from the last checkpoint's recorded
training time, spread over the steps in proportion (runs that predate the logged hours).

    python benchmarks/learning_curve.py runs/denoise-16k --metric val/pesq --every 4
    python benchmarks/learning_curve.py runs/aec-16k --metric val/pesq val/erle val/si_sdr
    python benchmarks/learning_curve.py runs/denoise-stream-16k --metric train/loss --mean-steps 1000
        (a training metric, logged every few steps and noisy: its mean over each 1000 steps)
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--metric", nargs="+", default=["val/pesq"], help="one or more logged metrics")
    parser.add_argument("--every", type=int, default=1, help="print every N-th validation")
    parser.add_argument("--mean-steps", type=int, default=0, metavar="S",
                        help="print each metric's mean over every S steps (rows: the first step of each span)")
    args = parser.parse_args()
    rows = [r for path in sorted(args.run.glob("logs/*/metrics.csv")) for r in csv.DictReader(path.open())
            if r.get(args.metric[0])]
    if not rows:
        raise SystemExit(f"{args.run}: no {args.metric[0]} in its logs.")
    seconds_per_step = None
    if not all(r.get("val/train_hours") for r in rows):
        # weights_only: plain tensors and numbers, never arbitrary objects (as `neuraudio export` reads it)
        checkpoint = torch.load(args.run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        seconds_per_step = checkpoint["neuraudio"]["train_seconds"] / max(1, int(checkpoint["global_step"]))
    hours_of = lambda r: (float(r["val/train_hours"]) if r.get("val/train_hours")  # noqa: E731
                          else int(r["step"]) * seconds_per_step / 3600)
    if args.mean_steps > 0:
        spans: dict[int, list] = {}
        for r in rows:
            spans.setdefault(int(r["step"]) // args.mean_steps, []).append(r)
        print(f"{args.run}: the mean of {', '.join(args.metric)} over every {args.mean_steps} steps")
        print(f"{'steps':>13} {'hours':>6}" + "".join(f" {m:>10}" for m in args.metric) + f" {'rows':>5}")
        for span in sorted(spans):
            group = spans[span]
            means = "".join(f" {sum(float(r[m]) for r in group if r.get(m)) / n:10.3f}"
                            if (n := sum(1 for r in group if r.get(m))) else f" {'-':>10}" for m in args.metric)
            first = span * args.mean_steps
            print(f"{first:6d}-{first + args.mean_steps - 1:<6d} {hours_of(group[0]):6.2f}{means} {len(group):5d}")
        return
    print(f"{args.run}: {', '.join(args.metric)} against training hours")
    print(f"{'step':>6} {'hours':>6}" + "".join(f" {m:>10}" for m in args.metric))
    for i, r in enumerate(rows):
        if i % args.every and i != len(rows) - 1:
            continue
        hours = hours_of(r)
        values = "".join(f" {float(r[m]):10.3f}" if r.get(m) else f" {'-':>10}" for m in args.metric)
        print(f"{int(r['step']):6d} {hours:6.2f}{values}")


if __name__ == "__main__":
    main()
