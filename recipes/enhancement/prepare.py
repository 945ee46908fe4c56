"""Build the enhancement layout from the real recordings of ../shared/data:

    python recipes/enhancement/prepare.py ../shared/data data/enhance [--extra-speech data/tts_speech]

writes 16 kHz mono FLAC files:

* ``OUT/train/clean``, ``OUT/val/clean``: the read speech, split by speaker as the vocoders split it
  (``split_names`` over LibriSpeech speakers, seed 0: the same 25 held-out speakers); ARCTIC and the spoken digits
  train; ``--extra-speech`` folders (e.g. ``neuraudio data speech`` output) train only;
* ``OUT/train/noise``, ``OUT/val/noise``: every real noise file cut in time: its first ``1 - val_fraction`` trains and
  the rest validates, so validation mixtures use noise segments never trained on, of every category;
* ``OUT/train/rir``: the measured room impulse responses (first channel), for reverberation during training.

ATTRIBUTION.txt files are copied along (CC BY needs the credit).
"""

import argparse
import shutil
from pathlib import Path

import neuraudio
from neuraudio.audio import audio_files_under
from neuraudio.datasets.common import split_names

RATE = 16000


def write(path: Path, audio) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    neuraudio.write_audio(path, audio, RATE, bit_depth="24")


def flat_name(path: Path, root: Path) -> str:
    return "_".join(path.relative_to(root).with_suffix("").parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path, help="../shared/data")
    parser.add_argument("out", type=Path)
    parser.add_argument("--extra-speech", type=Path, nargs="*", default=[])
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of each noise file held out (its end)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    speech, noise, rir = args.shared / "speech", args.shared / "noise", args.shared / "rir"
    libri = speech / "librispeech"
    speakers = sorted(p.name for p in libri.iterdir() if p.is_dir())
    train_speakers, val_speakers = split_names(speakers, 0.1, args.seed)
    counts = {"train/clean": 0, "val/clean": 0, "train/noise": 0, "val/noise": 0, "train/rir": 0}
    for split, names in (("train", train_speakers), ("val", val_speakers)):
        for speaker in names:
            for f in sorted((libri / speaker).glob("*.flac")):
                write(args.out / split / "clean" / f"librispeech_{f.stem}.flac", neuraudio.read_audio(f, sample_rate=RATE, channels=1)[0])
                counts[f"{split}/clean"] += 1
    others = [p for p in speech.iterdir() if p.is_dir() and p.name != "librispeech"]
    for root in [*others, *args.extra_speech]:
        for f in audio_files_under(root):
            write(args.out / "train" / "clean" / f"{root.name}_{flat_name(f, root)}.flac",
                  neuraudio.read_audio(f, sample_rate=RATE, channels=1)[0])
            counts["train/clean"] += 1
    for f in audio_files_under(noise):
        audio = neuraudio.read_audio(f, sample_rate=RATE, channels=1)[0]
        cut = round(audio.shape[-1] * (1 - args.val_fraction))
        name = flat_name(f, noise)
        write(args.out / "train" / "noise" / f"{name}.flac", audio[..., :cut])
        write(args.out / "val" / "noise" / f"{name}.flac", audio[..., cut:])
        counts["train/noise"] += 1
        counts["val/noise"] += 1
    for f in audio_files_under(rir):
        write(args.out / "train" / "rir" / f"{flat_name(f, rir)}.flac", neuraudio.read_audio(f, sample_rate=RATE, channels=1)[0])
        counts["train/rir"] += 1
    for attribution in args.shared.rglob("ATTRIBUTION.txt"):
        if attribution.parent.parent.name in ("speech", "noise", "rir"):
            target = args.out / "ATTRIBUTION" / attribution.relative_to(args.shared)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(attribution, target)
    print(", ".join(f"{k}: {v} files" for k, v in counts.items()))
    print(f"validation speakers ({len(val_speakers)}): {', '.join(val_speakers)}")


if __name__ == "__main__":
    main()
