"""`neuraudio separate` on a long file: peak memory, speed, and chunked equals one pass.

Writes a generated stereo song (tones with percussive clicks and noise) of `--minutes` at 44.1 kHz, runs
`neuraudio separate MODEL` on it in a subprocess (its peak RSS from the kernel), then compares the chunked output with
one pass of the model's window over a 30 s excerpt starting on the model's grid (`process_window`, with the
model's context either side; non-causal models only):

    python benchmarks/separate_long_file.py --model hpss --minutes 10
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import neuraudio
from neuraudio.examples import noisy_melody


def song(seconds: float, rate: int) -> torch.Tensor:
    left = noisy_melody(seconds, rate, noise_dbfs=-40.0)
    right = noisy_melody(seconds, rate, noise_dbfs=-40.0, seed=1)
    x = torch.cat([left, right])
    period = rate // 4
    x[:, ::period] += 0.6  # a click every 250 ms
    t = torch.arange(x.shape[-1]) / rate
    return (x + 0.05 * torch.sin(2 * math.pi * 55 * t)).clamp(-1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hpss")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--excerpt-seconds", type=float, default=30.0)
    args = parser.parse_args()
    model = neuraudio.load(args.model)
    rate = model.sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "long.wav"
        for start in range(0, int(args.minutes * 60), 60):  # written a minute at a time
            part = song(min(60.0, args.minutes * 60 - start), rate)
            if start == 0:
                full = part
            else:
                full = torch.cat([full, part], dim=-1)
        neuraudio.write_audio(source, full, rate, bit_depth="32f")
        del full
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "neuraudio", "separate", args.model, str(source), "-o",
                               str(Path(tmp) / "out"), "--bit-depth", "32f", "-q", "--threads", "1"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode:
            sys.exit(proc.stderr)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
        print(f"{args.model}: {args.minutes:g} min stereo at {rate} Hz through `neuraudio separate` in {wall:.1f} s "
              f"(real-time factor {wall / (args.minutes * 60):.3f}), peak RSS {peak:.2f} GB")
        if not hasattr(model, "process_window"):
            return
        length = round(args.excerpt_seconds * rate)
        # on the model's frame grid (a multiple of its hop): an STFT model framed at another phase separates a
        # little differently (1.35e-3 here at an excerpt start off the grid)
        start = round(60 * rate / model.hop) * model.hop
        x, _ = neuraudio.read_audio(source)
        excerpt = x[:, start : start + length]
        stems = [neuraudio.read_audio(Path(tmp) / "out" / "long" / f"{s}.wav")[0][:, start : start + length]
                 for s in model.stems]
        chunked = torch.stack(stems)
        # one pass over the excerpt with the model's context of real audio either side, trimmed back to it
        ctx = model.context
        with torch.inference_mode():
            one = model.process_window(x[:, start - ctx : start + length + ctx], {})[..., ctx : ctx + length]
        error = float((chunked - one).abs().max())
        print(f"chunked output against one pass over a {args.excerpt_seconds:g} s excerpt (from {start / rate:.2f} s): "
              f"max abs difference {error:.2e}")


if __name__ == "__main__":
    main()
