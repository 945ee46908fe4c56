"""Soak test of the real-time Engine: a long stream (default one hour of audio) simulated as fast as possible.

The input is a 10 s loop (``neuraudio.runtime.bench.bench_signal``) repeated; the first knob moves to its maximum
2 s into every loop and back to its minimum at 6 s, so the knob trajectory repeats exactly with the loop (the 20 ms
glide settles long before the loop ends). For a model whose memory fades within a loop (every effect model here),
the output of the last loop must then equal the output of the second loop of ``model.process`` on two loops:
that difference is the drift (the stream's output compared with the offline output delayed by ``engine.latency``,
15 samples for the compressor, 0 for klon-centaur). Memory: resident set size sampled once per minute of audio; the growth reported is
from the first minute to the end.

    python benchmarks/soak.py --model klon-centaur [--minutes 60] [--block-size 128]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import neuraudio
from neuraudio.runtime import Engine
from neuraudio.runtime.bench import bench_signal
from neuraudio.stream.processor import knob_trajectory

LOOP_SECONDS = 10.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--block-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = neuraudio.load(args.model)
    sr, block = model.sample_rate, args.block_size
    loop_len = int(LOOP_SECONDS * sr) // block * block  # whole blocks per loop: every loop starts on a block edge
    loop = bench_signal(sr, loop_len / sr)[:, :loop_len]
    loops = max(2, round(args.minutes * 60 / (loop_len / sr)))
    knob = next(iter(model.knobs), None)
    spec = model.knobs[knob] if knob else None
    # block indices inside a loop at which the knob changes
    changes = {int(2.0 * sr) // block: spec.maximum, int(6.0 * sr) // block: spec.minimum} if knob else {}

    engine = Engine(model, sr, block, 1).prepare()
    if knob:
        engine.set_knobs(**{knob: spec.minimum})
    blocks = np.split(loop.numpy(), loop_len // block, axis=-1)
    last = np.zeros((1, loop_len), dtype=np.float32)
    memory, start = [], time.perf_counter()
    samples_per_minute = 60 * sr
    done = 0
    for i in range(loops):
        for j, b in enumerate(blocks):
            if j in changes:
                engine.set_knobs(**{knob: changes[j]})
            y = engine.process(b)
            if i == loops - 1:
                last[:, j * block : (j + 1) * block] = y
            done += block
            if done % samples_per_minute < block:
                memory.append(rss_mb())
    wall = time.perf_counter() - start
    end_of_stream_mb = rss_mb()  # before the offline reference below allocates its own buffers

    knobs = {}
    if knob:
        events = [(k * loop_len + j * block, v) for k in range(2) for j, v in sorted(changes.items())]
        knobs[knob] = knob_trajectory(spec.minimum, events, 2 * loop_len, model.knob_time_constant_ms, sr)
    with torch.inference_mode():
        # the stream's output is the offline output delayed by the engine's latency
        delay = engine.latency
        reference = model.process(loop.repeat(1, 2), **knobs)[:, loop_len - delay : 2 * loop_len - delay].numpy()
    drift = float(np.abs(last - reference).max())
    stats = engine.stats()
    result = {"model": args.model, "audio_minutes": loops * loop_len / sr / 60, "wall_seconds": wall,
              "blocks": stats.blocks, "block_size": block, "p50_ms": stats.p50_ms, "p99_ms": stats.p99_ms,
              "max_ms": stats.max_ms, "budget_ms": stats.budget_ms, "overruns_when_unpaced": stats.overruns,
              "rss_first_minute_mb": memory[0] if memory else end_of_stream_mb, "rss_end_mb": end_of_stream_mb,
              "rss_growth_mb": end_of_stream_mb - (memory[0] if memory else end_of_stream_mb),
              "rss_per_minute_mb": [round(m, 1) for m in memory],
              "max_abs_drift_last_loop_vs_offline": drift}
    print(f"{args.model}: {result['audio_minutes']:.1f} min of audio in {wall:.0f} s "
          f"({result['audio_minutes'] * 60 / wall:.0f}x real time), {stats.blocks} blocks of {block}")
    print(f"  per block p50 {stats.p50_ms:.3f} ms, p99 {stats.p99_ms:.3f} ms, max {stats.max_ms:.3f} ms "
          f"(budget {stats.budget_ms:.3f} ms; last 8192 blocks for the percentiles)")
    print(f"  RSS {result['rss_first_minute_mb']:.1f} MB after the first minute, {result['rss_end_mb']:.1f} MB at "
          f"the end of the stream (growth {result['rss_growth_mb']:+.1f} MB)")
    print(f"  drift: max |last loop - offline| = {drift:.2e}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
