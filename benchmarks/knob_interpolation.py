"""Does a knob model interpolate? For a model trained without one captured setting, compare on held-out audio:

* its ESR at the unseen setting against the true output there, versus its ESR at the neighbouring settings;
* its output at the unseen setting versus its outputs at the neighbours, all against the true unseen output
  (it must be closest at the unseen value itself).

    python benchmarks/knob_interpolation.py --model runs-export/klon-interp --data data/klon-heldout \\
        --knob gain --unseen 0.75 --neighbours 0.25 1.0

All figures exclude the ignore.json ranges of the data folder.
"""

from __future__ import annotations

import argparse
import json

import torch

import neuraudio
from neuraudio import metrics
from neuraudio.datasets.effects import EffectsFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--knob", default="gain")
    parser.add_argument("--unseen", type=float, required=True)
    parser.add_argument("--neighbours", type=float, nargs=2, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = neuraudio.load(args.model)
    folder = EffectsFolder(args.data, model.sample_rate)
    mask = folder.mask[None]
    truth = {round(k[args.knob], 4): folder.y[i] for i, (_, _, k) in enumerate(folder.takes)}
    settings = [args.unseen, *args.neighbours]
    with torch.inference_mode():
        out = {v: model.process(folder.x, **{args.knob: v}) for v in settings}
        own = {v: metrics.esr(out[v], truth[round(v, 4)], mask) for v in settings}
        against_unseen = {v: metrics.esr(out[v], truth[round(args.unseen, 4)], mask) for v in settings}
        # How far the truth at the unseen setting is from any blend of the true neighbouring outputs: a model that
        # only saw the neighbours has no data on the shape of the knob in between beyond that.
        lo, hi = (truth[round(v, 4)] for v in args.neighbours)
        blend = min((metrics.esr(a / 40 * hi + (1 - a / 40) * lo, truth[round(args.unseen, 4)], mask), a / 40)
                    for a in range(41))
    report = {"esr_at_setting": own, "esr_against_true_unseen_output": against_unseen,
              "truth_best_blend_of_neighbours": {"esr": blend[0], "weight_of_second": blend[1]},
              "unseen_closest": min(against_unseen, key=against_unseen.get) == args.unseen,
              "unseen_over_worst_neighbour": own[args.unseen] / max(own[v] for v in args.neighbours)}
    print(f"{args.knob}={args.unseen} was not in training; held-out data {args.data}")
    for v in settings:
        print(f"  {args.knob}={v:<5g} ESR vs its own true output {own[v]:.4f}   "
              f"vs the true output at {args.unseen:g}: {against_unseen[v]:.4f}")
    print(f"  model at {args.unseen:g} closest to the truth there: {report['unseen_closest']}; "
          f"ESR at {args.unseen:g} / worst neighbour ESR = {report['unseen_over_worst_neighbour']:.2f}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
