"""Each loss term's effect on denoise-16k (or, with ``--recipe``, another denoiser's recipe), and the metric
discriminator's: short runs of the recipe, one term removed (or the discriminator or an asymmetric term added) per
run, on the same data, seed and wall-clock budget, then a table of the mean of each run's last three validations
(WB-PESQ and SI-SDR on the recipe's held-out real mixtures: one validation moves by up to about 0.03 PESQ from the
next) against the full recipe, with the range of those three. Equal time, not equal steps: a term that slows a step
(the discriminator's WB-PESQ on every batch) pays for it, as it would in a real run. From the classical start (the
log-MMSE denoiser) by default, or fine-tuning a trained model (``--init-from``: what each term does to a model near
where training has brought it, at ``--lr``).

    python recipes/enhancement/ablate.py --minutes 15 --jobs 2 --root runs/ablate
    python recipes/enhancement/ablate.py --minutes 12 --jobs 1 --root runs/ablate-ft --init-from denoise-16k --lr 3e-4
    python recipes/enhancement/ablate.py --root runs/ablate --table      # the table of runs already made
    python recipes/enhancement/ablate.py --recipe recipes/enhancement/denoise_stream_16k.yaml --minutes 12 --jobs 1 \
        --root runs/ablate-stream --init-from denoise-stream-16k --lr 2.2e-4 --only recipe under-1.0 gain-0.3

Runs use one CPU thread each (``--jobs`` of them side by side); a run that exists (``ROOT/NAME/logs``) is not
run again.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

RECIPE = Path(__file__).with_name("denoise_16k.yaml")
# name -> overrides of the recipe's loss weights (the recipe: magnitude 0.9, complex 0.3, phase 0.05, time 0.2,
# consistency 0.1, no discriminator)
VARIANTS = {
    "recipe": {},
    "no-complex": {"complex_weight": 0.0},
    "no-phase": {"phase_weight": 0.0},
    "no-time": {"time_weight": 0.0},
    "no-consistency": {"consistency_weight": 0.0},
    "metric-0.05": {"metric_weight": 0.05},
    # added terms against over-suppression (benchmarks/enhancement.py gains): per-bin (what the estimate's compressed
    # magnitude lacks of the target's) and global (the target's own gain in the output)
    "under-1.0": {"under_weight": 1.0},
    "gain-0.3": {"gain_weight": 0.3},
}


def command(name: str, root: Path, minutes: float, init_from: str | None = None,
            lr: float | None = None, recipe: Path = RECIPE) -> list[str]:
    total = round(minutes * 60)
    args = [sys.executable, "-m", "neuraudio", "train", str(recipe),
            "--trainer.default_root_dir", str(root / name), "--trainer.enable_progress_bar", "false",
            "--trainer.max_time", f"00:{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"]
    for key, value in VARIANTS[name].items():
        args += [f"--model.init_args.{key}", str(value)]
    if init_from:
        args += ["--model.init_args.init_from", init_from]
    if lr:
        args += ["--model.init_args.optimizer.init_args.lr", str(lr)]
    return args


def last_validations(run: Path, count: int = 3) -> dict[str, float] | None:
    """The last ``count`` validations of a run: mean PESQ and SI-SDR, the PESQ range, the last step and hours."""
    rows = [r for path in sorted(run.glob("logs/*/metrics.csv")) for r in csv.DictReader(path.open())
            if r.get("val/pesq")][-count:]
    if not rows:
        return None
    pesq = [float(r["val/pesq"]) for r in rows]
    return {"pesq": sum(pesq) / len(pesq), "range": max(pesq) - min(pesq), "count": len(rows),
            "si_sdr": sum(float(r["val/si_sdr"]) for r in rows) / len(rows), "step": int(rows[-1]["step"]),
            "hours": float(rows[-1]["val/train_hours"])}


def table(root: Path, names: list[str]) -> None:
    base = last_validations(root / "recipe")
    print("mean of each run's last three validations (range: max - min of their PESQ)")
    print(f"{'run':16s} {'steps':>6s} {'hours':>6s} {'val PESQ':>9s} {'range':>6s} {'d PESQ':>7s} {'SI-SDR':>7s} "
          f"{'d SI-SDR':>9s}")
    for name in names:
        r = last_validations(root / name)
        if r is None:
            print(f"{name:16s} (no validation logged)")
            continue
        d_pesq = r["pesq"] - base["pesq"] if base else float("nan")
        d_sdr = r["si_sdr"] - base["si_sdr"] if base else float("nan")
        print(f"{name:16s} {r['step']:6d} {r['hours']:6.2f} {r['pesq']:9.3f} {r['range']:6.3f} {d_pesq:+7.3f} "
              f"{r['si_sdr']:7.2f} {d_sdr:+9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("runs/ablate"))
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="the denoiser's recipe (default: denoise-16k's)")
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget of each run")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side, one CPU thread each")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--init-from", help="a model folder or shipped name to fine-tune (default: the classical start)")
    parser.add_argument("--lr", type=float, help="the optimizer's learning rate (default: the recipe's)")
    parser.add_argument("--table", action="store_true", help="print the table of the runs under ROOT, run nothing")
    args = parser.parse_args()
    if args.jobs < 1 or args.minutes <= 0:
        raise SystemExit("--jobs must be at least 1 and --minutes positive.")
    if not args.recipe.is_file():
        raise SystemExit(f"no recipe at {args.recipe}.")
    if not args.table:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        todo = [n for n in args.only if not (args.root / n / "logs").exists()]
        running: list[tuple[str, subprocess.Popen]] = []
        while todo or running:
            while todo and len(running) < args.jobs:
                name = todo.pop(0)
                (args.root / name).mkdir(parents=True, exist_ok=True)
                log = (args.root / name / "train.log").open("w")
                print(f"start {name}", flush=True)
                running.append((name, subprocess.Popen(command(name, args.root, args.minutes, args.init_from, args.lr,
                                                               args.recipe),
                                                       stdout=log,
                                                       stderr=subprocess.STDOUT, env=env)))
            time.sleep(5)
            for name, proc in list(running):
                if proc.poll() is not None:
                    print(f"done  {name} (exit {proc.returncode})", flush=True)
                    running.remove((name, proc))
    table(args.root, args.only)


if __name__ == "__main__":
    main()
