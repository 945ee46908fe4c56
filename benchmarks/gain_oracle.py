"""The best a frame-rate gain model (``GainEffect``'s output structure) can do on an effects folder: the true gain
``y / x`` in dB sampled at each frame's last sample and interpolated linearly inside frames, as the model does.

    python benchmarks/gain_oracle.py --data data/compressor/test --hop 16 4 [--seconds 60]
"""

from __future__ import annotations

import argparse

import torch

from neuraudio import metrics
from neuraudio.datasets.effects import EffectsFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--hop", type=int, nargs="+", default=[16])
    parser.add_argument("--seconds", type=float, default=60.0, help="first seconds of the folder to use")
    args = parser.parse_args()
    folder = EffectsFolder(args.data, args.sample_rate)
    n = int(args.seconds * args.sample_rate)
    x = folder.x[0, :n]
    print(f"{'take':10s} {'hop':>4s} {'esr':>8s} {'esr_raw':>8s}  knobs")
    for i, (name, _, knobs) in enumerate(folder.takes):
        y = folder.y[i][0, :n]
        gain = torch.where(x.abs() > 1e-4, 20 * torch.log10((y / x).abs().clamp_min(1e-6)), torch.zeros_like(x))
        for hop in args.hop:
            length = len(x) // hop * hop
            frame = gain[:length].reshape(-1, hop)[:, -1]
            before = torch.cat([frame[:1] * 0, frame[:-1]])
            ramp = torch.arange(1, hop + 1) / hop
            interpolated = (before[:, None] + (frame - before)[:, None] * ramp).reshape(-1)
            estimate, target = (x[:length] * 10 ** (interpolated / 20))[None], y[None, :length]
            print(f"{name:10s} {hop:>4d} {metrics.esr(estimate, target):>8.4f} "
                  f"{metrics.esr(estimate, target, pre_emphasis_coefficient=None):>8.4f}  {knobs}")


if __name__ == "__main__":
    main()
