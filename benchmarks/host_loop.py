"""A simulated plugin host: blocks fed to the Engine at real-time pace (the host waits for each block's deadline),
a knob moving every 50 blocks, for ``--seconds`` of audio. Prints the Engine's statistics and the overruns (blocks
whose compute time passed the block's duration).

    python benchmarks/host_loop.py --model klon-centaur --seconds 60 [--block-size 128] [--plain]

By default the loop first makes the settings a host makes on its audio thread
(``neuraudio.runtime.prepare_audio_thread``: garbage collector frozen, malloc heap kept, pinned to the last CPU,
SCHED_FIFO where permitted); ``--plain`` only disables the garbage collector. The CPU time the hypervisor stole
from this virtual machine during the run (``/proc/stat``) is printed too: an overrun while time was stolen is the
machine's, not the model's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os

import torch

import neuraudio
from neuraudio.runtime import Engine, prepare_audio_thread, release_audio_thread
from neuraudio.runtime.bench import bench_signal, paced_host_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--plain", action="store_true", help="no real-time thread settings, only gc disabled")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = neuraudio.load(args.model)
    sr, block = model.sample_rate, args.block_size
    engine = Engine(model, sr, block, 1).prepare()
    x = bench_signal(sr, args.seconds).numpy()
    knob = next(iter(model.knobs), None)
    if args.plain:
        gc.disable()
        report = {"gc": "disabled"}
    else:
        report = prepare_audio_thread(cpu=max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None)
    stolen = _steal_ms()
    try:
        late = paced_host_loop(engine, x, knob)
    finally:
        release_audio_thread()
    stolen = _steal_ms() - stolen
    s = engine.stats()
    result = {"model": args.model, "seconds": args.seconds, "blocks": s.blocks, "block_size": block,
              "budget_ms": s.budget_ms, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms, "max_ms": s.max_ms,
              "overruns": s.overruns, "host_late_blocks": late, "steal_ms": stolen, "thread": report}
    print(f"{args.model}: {args.seconds:g} s at real-time pace, {s.blocks} blocks of {block}: p50 {s.p50_ms:.3f} ms, "
          f"p99 {s.p99_ms:.3f} ms ({100 * s.p99_share:.1f}% of {s.budget_ms:.3f} ms), max {s.max_ms:.3f} ms, "
          f"{s.overruns} overruns; CPU time stolen by the hypervisor {stolen:.0f} ms")
    print("audio thread: " + "; ".join(f"{k} {v}" for k, v in report.items()))
    print(json.dumps(result))


def _steal_ms() -> float:
    """CPU time stolen from this virtual machine so far (all CPUs), ms; NaN where /proc/stat has no steal column."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return float(fields[8]) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


if __name__ == "__main__":
    main()
