"""Fit an ensemble of separators (``neuraudio.separation.ensemble.Ensemble``) on validation songs and save it as
one model folder: per stem, least-squares weights of the members' estimates. The ensemble's stems are the first
member's; a specialist (e.g. ``vocals-stream``: vocals/accompaniment) contributes to the stems it shares. A member
named as a shipped model is referenced by name (the folder holds only the weights matrix); a member given as a
folder is embedded (its weights copied into the ensemble's folder).

    python recipes/separation/ensemble.py models/hybrid-4stem models/vocals-stream \\
        --data data/separation_val --out models/ensemble-4stem

Before the final fit on every song, a two-fold check: the weights fit on one half of the songs are scored on the
other half (and the other way round), so the printed SDR of the ensemble is on songs its weights never saw, beside
each member's own on the same songs. ``--wiener`` adds the multichannel Wiener post-filter (offline only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import neuraudio
from neuraudio import hub, metrics
from neuraudio.datasets.separation import SeparationFolder
from neuraudio.separation.ensemble import Ensemble


def build(specs, wiener: bool) -> Ensemble:
    """A shipped member is referenced by name (its weights stay in its own folder); any other is embedded."""
    shipped = hub.shipped()
    folders = {spec: neuraudio.load(spec) for spec in specs if spec not in shipped}
    ensemble = Ensemble([{"model": spec} if spec in shipped else folders[spec].config for spec in specs],
                        wiener=wiener).eval()
    for own, spec in zip(ensemble.members, specs):
        if spec in folders:
            own.load_state_dict(folders[spec].state_dict())
    return ensemble


def score(estimates: torch.Tensor, stems: torch.Tensor, names) -> dict[str, float]:
    """SDR per stem that sounds in the song."""
    return {n: float(metrics.sdr(estimates[i], stems[i])) for i, n in enumerate(names)
            if float(stems[i].pow(2).mean()) > 1e-8}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("members", nargs="+", help="model names or folders; the first sets the stems")
    parser.add_argument("--data", required=True, help="validation songs, DIR/<song>/<stem>.wav")
    parser.add_argument("--out", required=True, help="the model folder to write")
    parser.add_argument("--name", default=None, help="the model's name (default: the folder's)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of each song to use")
    parser.add_argument("--wiener", action="store_true", help="add the Wiener post-filter")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        print("error: an ensemble needs at least two members.", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} already exists and is not empty; choose a new folder.", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    ensemble = build(args.members, args.wiener)
    members = list(ensemble.members)
    stems = list(ensemble.stems)
    folder = SeparationFolder(args.data, ensemble.sample_rate, 2, stems)
    songs = []
    for name in sorted(folder.songs):
        item = folder.read(name, 0, min(folder.frames(name), round(args.seconds * ensemble.sample_rate)))
        songs.append((name, item["mixture"], item["stems"]))
    if len(songs) < 2:
        print(f"error: {args.data} holds {len(songs)} song(s); the two-fold check needs at least two.", file=sys.stderr)
        return 2
    print(f"{len(songs)} songs of {args.data}, first {args.seconds:g} s; members: {', '.join(args.members)}")

    # every member's estimates once, in the ensemble's stem order; each fit and combination reuses them
    outputs = {}
    with torch.inference_mode():
        for name, mixture, _ in songs:
            outputs[name] = [ensemble.in_order(m.process(mixture), k) for k, m in enumerate(members)]

    def fit(on) -> torch.Tensor:
        return ensemble.fit_outputs((outputs[name], target) for name, _, target in on).clone()

    def combined(name, mixture, weights):
        w = weights.view(len(members), len(stems), 1, 1)
        y = sum(w[k] * outputs[name][k] for k in range(len(members)))
        return ensemble.post_filter(mixture, y) if args.wiener else y

    halves = [songs[0::2], songs[1::2]]
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in [*args.members, "ensemble (2-fold)"]}
    with torch.inference_mode():
        for fit_on, held_out in (halves, halves[::-1]):
            weights = fit(fit_on)
            for name, mixture, target in held_out:
                for k, m in enumerate(args.members):
                    own = members[k].stems
                    rows[m].append({s: v for s, v in score(outputs[name][k], target, stems).items() if s in own})
                rows["ensemble (2-fold)"].append(score(combined(name, mixture, weights), target, stems))
    print("SDR (dB), mean over songs where the stem sounds; the ensemble's weights fit on the other half"
          + (", Wiener post-filter" if args.wiener else ""))
    print(f"{'model':<28}" + "".join(f"{s:>9}" for s in stems) + f"{'mean':>9}")
    summary = {}
    for model, per_song in rows.items():
        means = []
        line = f"{model:<28}"
        for s in stems:
            values = [r[s] for r in per_song if s in r]
            if values:
                means.append(sum(values) / len(values))
                line += f"{means[-1]:9.2f}"
            else:
                line += f"{'-':>9}"
        summary[model] = sum(means) / len(means) if len(means) == len(stems) else None
        print(line + (f"{summary[model]:9.2f}" if summary[model] is not None else f"{'-':>9}"))

    with torch.inference_mode():
        fit(songs)  # the weights the folder keeps
    print("weights (members x stems), fit on every song:")
    for k, m in enumerate(args.members):
        print(f"  {m:<26}" + "".join(f"{float(w):9.3f}" for w in ensemble.weights[k]))
    hub.save_folder(ensemble, out, name=args.name or out.name, task="separation",
                    summary=f"ensemble of {', '.join(Path(m).name for m in args.members)}",
                    training={"command": " ".join(["python", *sys.argv]), "data": args.data,
                              "members": args.members},
                    metrics={"two_fold_sdr": {k: v for k, v in summary.items() if v is not None}})
    print(f"wrote {out}: latency {ensemble.latency} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
