"""Two training runs side by side: a validation metric at the steps both logged (from RUN/logs/*/metrics.csv).

    python benchmarks/compare_runs.py runs/klon-interp-audio runs/klon-interp-concat --every 600
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def logged(run: Path, metric: str) -> dict[int, float]:
    values = {}
    for path in sorted(run.glob("logs/*/metrics.csv")):
        for row in csv.DictReader(path.open()):
            if row.get(metric):
                values[int(row["step"])] = float(row[metric])
    if not values:
        raise SystemExit(f"{run}: no {metric} in its logs.")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs=2, type=Path)
    parser.add_argument("--metric", default="val/esr")
    parser.add_argument("--every", type=int, default=1, help="print every N-th common step (in steps)")
    args = parser.parse_args()
    a, b = (logged(r, args.metric) for r in args.runs)
    common = sorted(set(a) & set(b))
    print(f"{args.metric} at equal steps: {args.runs[0].name} vs {args.runs[1].name}")
    print(f"{'step':>6} {args.runs[0].name:>24} {args.runs[1].name:>24}")
    for step in common:
        if (step + 1) % args.every == 0 or step == common[-1]:
            print(f"{step:>6} {a[step]:>24.4f} {b[step]:>24.4f}")


if __name__ == "__main__":
    main()
