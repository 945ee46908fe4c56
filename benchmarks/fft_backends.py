"""PyTorch's and NumPy's CPU FFTs side by side, single calls on one thread (what a streaming step makes): median
microseconds per call, the two libraries alternating call by call so a machine whose load changes slows both alike.

    python benchmarks/fft_backends.py                      (the sizes aec-linear's delay tracker and filter use)
    python benchmarks/fft_backends.py --sizes 320 16384 --calls 400

Why: ``neuraudio.stream.delay.DelayTracker`` takes its 16384-point transforms with NumPy (see its docstring).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def timed(fn, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 8192, 10240, 16384])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'size':>6} {'transform':>10} {'torch us':>9} {'numpy us':>9} {'ratio':>6}")
    for size in args.sizes:
        x = torch.randn(size)
        spectrum = torch.fft.rfft(x)
        xn, sn, xc = x.numpy(), spectrum.numpy(), x.to(torch.complex64)
        cases = [("rfft", lambda: torch.fft.rfft(x), lambda: np.fft.rfft(xn)),
                 ("irfft", lambda: torch.fft.irfft(spectrum, size), lambda: np.fft.irfft(sn, size)),
                 ("fft", lambda: torch.fft.fft(xc), lambda: np.fft.fft(xc.numpy()))]
        with torch.inference_mode():
            for name, with_torch, with_numpy in cases:
                for fn in (with_torch, with_numpy):  # warm-up (plans, caches)
                    timed(fn, 5)
                t, n = [], []
                for _ in range(args.calls):
                    t += timed(with_torch, 1)
                    n += timed(with_numpy, 1)
                mt, mn = statistics.median(t) * 1e6, statistics.median(n) * 1e6
                print(f"{size:>6} {name:>10} {mt:9.1f} {mn:9.1f} {mt / mn:6.2f}")
    print(f"numpy {np.__version__} (float32 transforms from 2.0; 1.x computes in float64), torch {torch.__version__}")


if __name__ == "__main__":
    main()
