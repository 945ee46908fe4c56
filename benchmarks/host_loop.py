"""A simulated plugin host: blocks fed to the Engine at real-time pace (the host waits for each block's deadline),
a knob moving every 50 blocks, for ``--seconds`` of audio. Prints the Engine's statistics and the overruns (blocks
whose compute time passed the block's duration).

    python benchmarks/host_loop.py --model klon-centaur --seconds 60 [--block-size 128]
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import torch

import neuraudio
from neuraudio.runtime import Engine
from neuraudio.runtime.bench import bench_signal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--block-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = neuraudio.load(args.model)
    sr, block = model.sample_rate, args.block_size
    engine = Engine(model, sr, block, 1).prepare()
    x = bench_signal(sr, args.seconds).numpy()
    count = x.shape[-1] // block
    knob = next(iter(model.knobs), None)
    late = 0
    gc.disable()  # as a real-time host does on its audio thread
    try:
        deadline = time.perf_counter()
        for i in range(count):
            if knob and i % 50 == 0:
                spec = model.knobs[knob]
                engine.set_knobs(**{knob: spec.maximum if (i // 50) % 2 == 0 else spec.minimum})
            engine.process(x[:, i * block : (i + 1) * block])
            deadline += block / sr
            wait = deadline - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:
                late += 1  # the host itself fell behind the deadline (counts sleeping jitter too)
    finally:
        gc.enable()
    s = engine.stats()
    result = {"model": args.model, "seconds": args.seconds, "blocks": s.blocks, "block_size": block,
              "budget_ms": s.budget_ms, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms, "max_ms": s.max_ms,
              "overruns": s.overruns, "host_late_blocks": late}
    print(f"{args.model}: {args.seconds:g} s at real-time pace, {s.blocks} blocks of {block}: p50 {s.p50_ms:.3f} ms, "
          f"p99 {s.p99_ms:.3f} ms ({100 * s.p99_share:.1f}% of {s.budget_ms:.3f} ms), max {s.max_ms:.3f} ms, "
          f"{s.overruns} overruns")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
