"""Split the real read speech of ../shared/data/speech into the vocoder layout, by speaker:

    python recipes/vocoding/prepare_speech.py ../shared/data/speech data/vocoder [--val-fraction 0.1]

writes ``OUT/train/<corpus>/<speaker>/<utt>.flac`` (copies) and ``OUT/val/librispeech/...``: a seeded tenth of the
LibriSpeech speakers (``neuraudio.datasets.common.split_names``, seed 0) is held out for validation, never trained on;
ARCTIC and the spoken digits go to training. The ATTRIBUTION.txt files are copied along (CC BY needs the credit).
"""

import argparse
import shutil
from pathlib import Path

from neuraudio.datasets.common import split_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("speech", type=Path, help="../shared/data/speech")
    parser.add_argument("out", type=Path)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    libri = args.speech / "librispeech"
    speakers = sorted(p.name for p in libri.iterdir() if p.is_dir())
    train, val = split_names(speakers, args.val_fraction, args.seed)
    copied = {"train": 0, "val": 0}
    for split, names in (("train", train), ("val", val)):
        for speaker in names:
            for f in sorted((libri / speaker).glob("*.flac")):
                target = args.out / split / "librispeech" / speaker / f.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
                copied[split] += 1
    for corpus in sorted(p for p in args.speech.iterdir() if p.is_dir() and p.name != "librispeech"):
        for f in sorted(corpus.rglob("*")):
            if f.suffix.lower() in (".wav", ".flac"):
                target = args.out / "train" / corpus.name / f.relative_to(corpus)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
                copied["train"] += 1
    for attribution in args.speech.rglob("ATTRIBUTION.txt"):
        target = args.out / attribution.relative_to(args.speech)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(attribution, target)
    print(f"{copied['train']} training files, {copied['val']} validation files ({len(val)} held-out LibriSpeech "
          f"speakers: {', '.join(val)})")


if __name__ == "__main__":
    main()
