"""Write the held-out part of the Klon data (the last 50 clips, from 120.0 s) as its own effects folder, with the
ignore ranges shifted, so `neuraudio eval effect` reports figures only on clips training never saw:

    python recipes/effects/klon_heldout.py --klon ../shared/data/effects/klon --out data/klon-heldout [--gains 0.75]
    neuraudio eval effect --model pretrained/klon-centaur --data data/klon-heldout

``--no-knobs`` writes the takes without knobs.json (a fixed-setting capture, for a model without knobs) and
``--part all`` keeps every clip (for training with ``--data.val_from_seconds 120``, which holds the same clips out):

    python recipes/effects/klon_heldout.py --part all --gains 1.0 --no-knobs --out data/klon-fixed-g100
    python recipes/effects/klon_heldout.py --gains 1.0 --no-knobs --out data/klon-fixed-g100-heldout
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import neuraudio

CLIP = 26460          # 0.6 s at 44.1 kHz: 0.5 s of guitar and 0.1 s of silence
FIRST_HELD_OUT = 200  # clips 200..249


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--klon", type=Path, default=Path("../shared/data/effects/klon"))
    parser.add_argument("--out", type=Path, default=Path("data/klon-heldout"))
    parser.add_argument("--gains", nargs="*", help="only these takes (e.g. 0.75); default all")
    parser.add_argument("--part", choices=["heldout", "all"], default="heldout")
    parser.add_argument("--no-knobs", action="store_true", help="fixed-setting capture: no knobs.json")
    args = parser.parse_args()
    start = FIRST_HELD_OUT * CLIP if args.part == "heldout" else 0
    args.out.mkdir(parents=True, exist_ok=True)
    x, rate = neuraudio.read_audio(args.klon / "input.flac")
    neuraudio.write_audio(args.out / "input.wav", x[:, start:], rate, bit_depth="32f")
    ranges = json.loads((args.klon / "ignore.json").read_text())["ranges"]
    shifted = [[a - start, b - start] for a, b in ranges if b > start]
    (args.out / "ignore.json").write_text(json.dumps({"ranges": shifted}) + "\n")
    for take in sorted(p for p in args.klon.iterdir() if p.is_dir()):
        knobs = json.loads((take / "knobs.json").read_text())
        if args.gains and f"{knobs['gain']:.2f}" not in {f"{float(g):.2f}" for g in args.gains}:
            continue
        y, _ = neuraudio.read_audio(take / "output.flac")
        (args.out / take.name).mkdir(exist_ok=True)
        neuraudio.write_audio(args.out / take.name / "output.wav", y[:, start:], rate, bit_depth="32f")
        if not args.no_knobs:
            (args.out / take.name / "knobs.json").write_text(json.dumps(knobs) + "\n")
    print(f"wrote {args.out}: clips {start // CLIP}..249 ({(x.shape[-1] - start) / rate:.1f} s)")


if __name__ == "__main__":
    main()
