"""What a GPU training session sends back through $OUT (at most 8 files of 16 MiB): each exported model in
OUT/models/<name>/ as float16 safetensors + config.json, ``--per-tar`` models to a tar, and the logs (OUT/train-*.log
and each run's metrics.csv) in train-logs.tar. Used by benchmarks/gpu_vocoder.sh and benchmarks/gpu_separation.sh.

    python3 benchmarks/gpu_pack.py "$OUT" --per-tar 2
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

from safetensors.torch import load_file, save_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-tar", type=int, default=1, help="models per tar (default 1)")
    args = parser.parse_args()
    out, per = args.out, max(1, args.per_tar)
    names = sorted(p.name for p in (out / "models").iterdir() if (p / "model.safetensors").is_file()) \
        if (out / "models").is_dir() else []
    for i in range(0, len(names), per):
        group = names[i : i + per]
        with tarfile.open(out / (f"model-{group[0]}.tar" if per == 1 else f"models-{i // per}.tar"), "w") as tar:
            for name in group:
                folder = out / "models" / name
                half = {k: v.half() if v.is_floating_point() else v
                        for k, v in load_file(folder / "model.safetensors").items()}
                save_file(half, out / f"{name}.fp16.safetensors")
                tar.add(out / f"{name}.fp16.safetensors", f"{name}/model.fp16.safetensors")
                tar.add(folder / "config.json", f"{name}/config.json")
                (out / f"{name}.fp16.safetensors").unlink()
    with tarfile.open(out / "train-logs.tar", "w") as tar:
        for log in sorted(out.glob("train-*.log")):
            tar.add(log, log.name)
        for csv in sorted(out.glob("runs/*/logs/version_0/metrics.csv")):
            tar.add(csv, f"{csv.parents[2].name}-metrics.csv")
    print("packed:", ", ".join(names))


if __name__ == "__main__":
    main()
