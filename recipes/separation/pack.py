"""Carry a separation layout (DIR/<song>/<stem>.wav) to a machine it cannot be copied to whole, e.g. a lent GPU
machine whose working tree is limited to 64 MiB: ``pack`` writes every stem as Ogg Vorbis (about 70 kbit/s for a
dense stereo stem at the default level, a tenth of 16-bit PCM; silent stems cost little), ``unpack`` decodes the
files back to 16-bit WAV in the same layout.

    python recipes/separation/pack.py pack data/separation .gpu_data/separation
    python recipes/separation/pack.py unpack .gpu_data/separation data/separation

Vorbis is lossy: each stem loses detail above about 16 kHz and gains coding noise some 20-30 dB below it. Training
remixes the decoded stems, so mixture and targets stay consistent; models trained on packed data should be judged
on the original WAV files.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf


def _pack(job: tuple[Path, Path, float]) -> int:
    src, dst, level = job
    audio, rate = sf.read(src, dtype="float32", always_2d=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, audio, rate, format="OGG", subtype="VORBIS", compression_level=level)
    return dst.stat().st_size


def _unpack(job: tuple[Path, Path, float]) -> int:
    src, dst, _ = job
    audio, rate = sf.read(src, dtype="float32", always_2d=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, audio.clip(-1.0, 1.0), rate, subtype="PCM_16")
    return dst.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["pack", "unpack"])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--level", type=float, default=0.75,
                        help="Vorbis compression level, 0 (best quality) to 1 (smallest); default 0.75")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    src_ext, dst_ext = (".wav", ".ogg") if args.action == "pack" else (".ogg", ".wav")
    files = sorted(args.src.glob(f"*/*{src_ext}"))
    if not files:
        print(f"error: no {src_ext} files under {args.src}/<song>/", file=sys.stderr)
        return 2
    if args.dst.resolve() == args.src.resolve():
        print("error: the destination must differ from the source", file=sys.stderr)
        return 2
    jobs = [(f, args.dst / f.parent.name / (f.stem + dst_ext), args.level) for f in files]
    with ProcessPoolExecutor(args.workers) as pool:
        sizes = list(pool.map(_pack if args.action == "pack" else _unpack, jobs, chunksize=4))
    print(f"{args.action}: {len(files)} files, {sum(sizes) / 2**20:.1f} MiB in {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
