"""`neuraudio enhance` on a long file: peak memory and speed.

Writes a generated mono 16 kHz signal (a tone melody in noise) of ``--minutes``, runs ``neuraudio enhance MODEL`` on
it in a subprocess on one thread, and prints the child's peak RSS (from the kernel) and the real-time factor:

    python benchmarks/enhance_long_file.py --model denoise-16k --minutes 10
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import neuraudio
from neuraudio.examples import noisy_melody


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="denoise-16k")
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    rate = neuraudio.load(args.model).sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "long.wav", Path(tmp) / "out.wav"
        parts = [noisy_melody(min(60.0, args.minutes * 60 - s), rate, noise_dbfs=-30.0, seed=s)
                 for s in range(0, int(args.minutes * 60), 60)]
        neuraudio.write_audio(source, torch.cat(parts, dim=-1), rate, bit_depth="16")
        del parts
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "neuraudio", "enhance", args.model, str(source), str(out), "-q",
                               "--threads", "1"], capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode:
            sys.exit(proc.stderr)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
        length = neuraudio.read_audio(out)[0].shape[-1]
        print(f"{args.model}: {args.minutes:g} min mono at {rate} Hz through `neuraudio enhance` in {wall:.1f} s "
              f"(real-time factor {wall / (args.minutes * 60):.3f}, one thread), peak RSS {peak:.2f} GB, "
              f"output {length / rate / 60:.2f} min")


if __name__ == "__main__":
    main()
