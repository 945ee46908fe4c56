"""Cost of the shared streaming backend: STFT -> ISTFT identity through a Stream, block by block, on one thread.

Prints, for 48 kHz mono and each (n_fft, hop) and host block size, the time per block (mean and p99) as a fraction
of the block's real-time duration, and the offline stft/istft throughput on the same signal, in one run.

    python benchmarks/stream_overhead.py [--seconds 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from neuraudio.stream import STFTProcessor, istft, stft

SR = 48000
CONFIGS = [(1024, 256), (512, 128)]
BLOCKS = [32, 64, 128, 256, 512, 1024, 4096]


def stream_times(n_fft: int, hop: int, block: int, x: torch.Tensor) -> torch.Tensor:
    stream = STFTProcessor(SR, n_fft, hop).stream(block_size=block)
    for b in x[:, : 50 * block].split(block, -1):  # warm-up: caches, allocator
        stream.process(b)
    stream.reset()
    times = []
    clock = time.perf_counter_ns
    for b in x.split(block, -1):
        t0 = clock()
        stream.process(b)
        times.append(clock() - t0)
    return torch.tensor(times, dtype=torch.float64) * 1e-9


def offline_rate(n_fft: int, hop: int, x: torch.Tensor) -> float:
    """Seconds of audio per second of compute for stft followed by istft."""
    stft(x, n_fft, hop), istft(stft(x, n_fft, hop), n_fft, hop)  # warm-up
    t0 = time.perf_counter()
    repeats = 3
    for _ in range(repeats):
        istft(stft(x, n_fft, hop), n_fft, hop)
    return repeats * x.shape[-1] / SR / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = 0.1 * torch.randn(1, int(args.seconds * SR), generator=torch.Generator().manual_seed(0))
    rows = []
    with torch.inference_mode():
        for n_fft, hop in CONFIGS:
            offline = offline_rate(n_fft, hop, x)
            for block in BLOCKS:
                t = stream_times(n_fft, hop, block, x)
                budget = block / SR
                rows.append({
                    "n_fft": n_fft, "hop": hop, "block": block, "budget_ms": budget * 1e3,
                    "mean_ms": float(t.mean()) * 1e3, "p99_ms": float(t.quantile(0.99)) * 1e3,
                    "max_ms": float(t.max()) * 1e3,
                    "mean_frac": float(t.mean()) / budget, "p99_frac": float(t.quantile(0.99)) / budget,
                    "offline_x_realtime": offline,
                })
    if args.json:
        print(json.dumps(rows))
        return
    print(f"streaming STFT->ISTFT identity, {SR} Hz mono, {args.seconds:g} s, torch {torch.__version__}, 1 thread")
    print(f"{'n_fft':>5} {'hop':>4} {'block':>5} {'budget ms':>9} {'mean ms':>8} {'p99 ms':>7} {'max ms':>7} "
          f"{'mean %':>7} {'p99 %':>6} {'offline x RT':>12}")
    for r in rows:
        print(f"{r['n_fft']:5d} {r['hop']:4d} {r['block']:5d} {r['budget_ms']:9.3f} {r['mean_ms']:8.4f} "
              f"{r['p99_ms']:7.4f} {r['max_ms']:7.3f} {100 * r['mean_frac']:6.2f}% {100 * r['p99_frac']:5.2f}% "
              f"{r['offline_x_realtime']:12.0f}")


if __name__ == "__main__":
    main()
