"""Write the four-stem separation layout (DIR/<song>/{drums,bass,other,vocals}.wav, 44.1 kHz stereo) that
recipes/separation/*.yaml train on, from

* songs of ``neuraudio data music`` (their stems ``drums``, ``bass``, ``vocals`` kept; every other stem, e.g. lead,
  piano, strings, summed into ``other``), and
* with ``--real DIR`` (e.g. ../shared/data/music), real solo recordings under ``DIR/<corpus>/<song>/<stem>.*``: each
  becomes a song of one stem (a stem named like ``*sing*``, ``*voice*`` or ``*vocal*`` is ``vocals``, ``*drum*`` or
  percussion ``drums``, ``*bass*`` ``bass``, anything else ``other``; a file of drums and bass together is left
  out), the other stems silent. Training remixes
  stems across songs, so a real solo is heard over rendered drums and bass.

    neuraudio data music data/music_raw --songs 120 --seconds 30
    python recipes/separation/prepare.py data/music_raw data/separation --real ../shared/data/music

Songs whose name hashes into the last ``--val-percent`` percent go to OUT_val instead (rendered songs only), a
validation set of whole songs the training never sees.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import torch

import neuraudio
from neuraudio.audio import audio_files_under

STEMS = ("drums", "bass", "other", "vocals")
RATE = 44100
KIND = [(re.compile(r"sing|voice|vocal|soprano", re.I), "vocals"),
        (re.compile(r"drum|percussion|castanet|bendir|mridangam|tabla", re.I), "drums"),
        (re.compile(r"bass(?!oon)", re.I), "bass")]


def stereo(x: torch.Tensor) -> torch.Tensor:
    return x.expand(2, -1).clone() if x.shape[0] == 1 else x[:2]


def rendered(song: Path) -> dict[str, torch.Tensor]:
    stems: dict[str, torch.Tensor] = {}
    for path in sorted(song.glob("*.wav")):
        if path.stem == "mixture":
            continue
        audio = stereo(neuraudio.read_audio(path, sample_rate=RATE)[0])
        name = path.stem if path.stem in STEMS else "other"
        stems[name] = stems[name] + audio if name in stems else audio
    return stems


def kind(path: Path) -> str:
    text = "/".join(path.parts[-3:])
    return next((stem for pattern, stem in KIND if pattern.search(text)), "other")


def write(folder: Path, stems: dict[str, torch.Tensor]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        neuraudio.write_audio(folder / f"{name}.wav", audio, RATE, bit_depth="16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("music", help="a `neuraudio data music` folder")
    parser.add_argument("out")
    parser.add_argument("--real", help="a folder of real solo recordings (DIR/<corpus>/<song>/<stem>.*)")
    parser.add_argument("--val-percent", type=float, default=10.0)
    args = parser.parse_args()
    out, val = Path(args.out), Path(args.out + "_val")
    counts = {"train": 0, "val": 0, "real": 0}
    for song in sorted(p for p in Path(args.music).iterdir() if p.is_dir()):
        held = int(hashlib.sha1(song.name.encode()).hexdigest(), 16) % 10000 < args.val_percent * 100
        write((val if held else out) / song.name, rendered(song))
        counts["val" if held else "train"] += 1
    if args.real:
        for path in audio_files_under(args.real):
            if path.stem.startswith("mixture") or "mixture" in path.parts[-2]:
                continue  # mixtures without stems teach nothing here
            if re.search(r"drum", path.stem, re.I) and re.search(r"bass", path.stem, re.I):
                continue  # two stems in one file (drum_bass.flac): no single label fits
            audio = stereo(neuraudio.read_audio(path, sample_rate=RATE)[0])
            if audio.shape[-1] < RATE:
                continue
            name = "real_" + re.sub(r"[^A-Za-z0-9]+", "_", str(path.relative_to(args.real).with_suffix("")))
            write(out / name, {kind(path): audio})
            counts["real"] += 1
    print(f"wrote {out}: {counts['train']} rendered songs and {counts['real']} real solo recordings; "
          f"{val}: {counts['val']} rendered songs for validation")


if __name__ == "__main__":
    main()
