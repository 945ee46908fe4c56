"""`neuraudio effect` with different torch thread counts while another process keeps one core busy.

Why the CLI's default is half the cores (1 to 4): torch's own default uses every core, and on a shared machine a
thread that waits for a busy core stalls the others. Prints the wall time of `process_file` on the same file for each
thread count, alternating, best of `--repeats`:

    python benchmarks/effect_threads.py --model klon-centaur --seconds 10 --threads 1 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import torch

import neuraudio
from neuraudio.examples import noisy_melody


def busy(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="klon-centaur")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-load", action="store_true", help="no busy process beside")
    args = parser.parse_args()
    model = neuraudio.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.wav"
        neuraudio.write_audio(source, 0.3 * noisy_melody(args.seconds, model.sample_rate), model.sample_rate)
        stop = multiprocessing.Event()
        hog = None if args.no_load else multiprocessing.Process(target=busy, args=(stop,), daemon=True)
        if hog:
            hog.start()
        try:
            best = {n: float("inf") for n in args.threads}
            for _ in range(args.repeats):
                for n in args.threads:
                    torch.set_num_threads(n)
                    started = time.perf_counter()
                    neuraudio.process_file(model, source, Path(tmp) / "out.wav")
                    best[n] = min(best[n], time.perf_counter() - started)
        finally:
            stop.set()
            if hog:
                hog.join()
    load = "no other load" if args.no_load else "one core kept busy by another process"
    print(f"{args.model}, {args.seconds:g} s file, {load}, best of {args.repeats}:")
    for n, seconds in best.items():
        print(f"  {n} thread(s): {seconds:.2f} s ({seconds / best[args.threads[0]]:.2f}x the first)")


if __name__ == "__main__":
    main()
