"""How long a run of exact-zero input should a RecurrentEffect's silence gate wait for? Apply the gate after the
fact to a model's output, for several run lengths N, and print the ESR per take (outside the ignore ranges).

Choose N on training material (``--end-seconds``: only the start of the folder), never on the held-out clips:

    python benchmarks/silence_gate.py --model runs-export/klon-centaur-w48 --data ../shared/data/effects/klon \\
        --end-seconds 120

The model is run without its own gate (``silence_gate`` is set to 0), so every N is judged on the same output.
"""

from __future__ import annotations

import argparse

import torch

import neuraudio
from neuraudio.effects.recurrent import zero_run
from neuraudio import metrics
from neuraudio.datasets.effects import EffectsFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--end-seconds", type=float, help="use the folder only up to this time (training part)")
    parser.add_argument("--lengths", type=int, nargs="*", default=[0, 1, 2, 3, 4, 8, 16], help="N; 0: no gate")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = neuraudio.load(args.model)
    if getattr(model, "silence_gate", 0):
        model.silence_gate = 0
    folder = EffectsFolder(args.data, model.sample_rate)
    end = folder.frames if args.end_seconds is None else min(folder.frames, round(args.end_seconds * model.sample_rate))
    x, mask = folder.x[..., :end], folder.mask[None, :end]
    run = zero_run(x)
    # the runs of exact zeros inside the counted ranges, by length: the gate must not fire inside real material
    inside = zero_run(torch.where(mask.bool(), x, torch.ones_like(x)))[0]
    ends = torch.cat([inside[1:] == 0, torch.tensor([True])]) & (inside > 0)
    lengths = inside[ends]
    counts = ", ".join(f"{n}: {int((lengths == n).sum())}" for n in range(1, 9))
    print(f"{args.data}: {end / model.sample_rate:.1f} s; runs of exact-zero input by length: {counts}, "
          f"longer: {int((lengths > 8).sum())} (longest {int(lengths.max()) if lengths.numel() else 0})")
    print(f"{'take':<20}" + "".join(f"{'N=' + str(n):>9}" for n in args.lengths))
    worst = {n: 0.0 for n in args.lengths}
    with torch.inference_mode():
        for (name, _, knobs), truth in zip(folder.takes, folder.y):
            y = model.process(x, **knobs)
            row = []
            for n in args.lengths:
                gated = y if n == 0 else y.masked_fill(run >= n, 0.0)
                value = metrics.esr(gated, truth[..., :end], mask)
                worst[n] = max(worst[n], value)
                row.append(value)
            print(f"{name:<20}" + "".join(f"{v:9.4f}" for v in row))
    print(f"{'worst take':<20}" + "".join(f"{worst[n]:9.4f}" for n in args.lengths))


if __name__ == "__main__":
    main()
