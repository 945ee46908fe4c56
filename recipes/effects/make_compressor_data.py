"""Build training and test folders (effects layout) for the `compressor` model from the reference DSP compressor.

Input material: every music and speech file of ../shared/data (resampled to 48 kHz, mono) plus generated musical
material (the capture signal's plucked strings, chords and hits), with level rides so the compressor works at many
levels. Each take is that input through `neuraudio.effects.dsp.Compressor` at a random knob setting
(threshold_db -60..0, ratio 1..20 log-uniform, attack_ms 0.1..100 log-uniform, release_ms 10..1000 log-uniform;
knee 6 dB, makeup 0 dB). The test folder uses other audio (the last 20 % of every source) and other knob settings.

    python recipes/effects/make_compressor_data.py --shared ../shared/data --out data/compressor --takes 48 \
        --test-takes 24
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

import neuraudio
from neuraudio.audio import audio_files_under, read_audio
from neuraudio.effects.capture import capture_signal
from neuraudio.effects.dsp import Compressor

SR = 48000
RANGES = {"threshold_db": (-60.0, 0.0, "lin"), "ratio": (1.0, 20.0, "log"), "attack_ms": (0.1, 100.0, "log"),
          "release_ms": (10.0, 1000.0, "log")}


def random_knobs(gen: torch.Generator) -> dict[str, float]:
    knobs = {}
    for name, (lo, hi, scale) in RANGES.items():
        u = float(torch.rand((), generator=gen))
        knobs[name] = round(lo + u * (hi - lo) if scale == "lin" else math.exp(math.log(lo) + u * math.log(hi / lo)), 3)
    return knobs


def material(shared: Path, part: str, seed: int) -> torch.Tensor:
    """Real music and speech (first 80 % for 'train', last 20 % for 'test') plus generated music, level-ridden."""
    pieces = []
    for path in audio_files_under(shared / "music") + audio_files_under(shared / "speech"):
        audio, _ = read_audio(path, sample_rate=SR, channels=1)
        cut = int(0.8 * audio.shape[-1])
        pieces.append(audio[:, :cut] if part == "train" else audio[:, cut:])
    generated, _ = capture_signal(SR, 2.0 if part == "train" else 1.0, seed=seed)
    pieces.append(generated)
    x = torch.cat(pieces, dim=-1)
    gen = torch.Generator().manual_seed(seed)
    ride = torch.empty(x.shape[-1] // SR + 2).uniform_(-30.0, 0.0, generator=gen)  # a new level every second
    gain_db = torch.nn.functional.interpolate(ride[None, None], size=x.shape[-1], mode="linear")[0]
    x = x / x.abs().max() * 10 ** (gain_db / 20)
    return x.clamp(-1, 1)


def build(out: Path, x: torch.Tensor, takes: int, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    neuraudio.write_audio(out / "input.wav", x, SR, bit_depth="32f")
    comp = Compressor(SR)
    gen = torch.Generator().manual_seed(seed)
    for i in range(takes):
        knobs = random_knobs(gen)
        take = out / f"take{i:03d}"
        take.mkdir(exist_ok=True)
        y = comp.process(x, **knobs, knee_db=6.0, makeup_db=0.0)
        neuraudio.write_audio(take / "output.wav", y, SR, bit_depth="32f")
        (take / "knobs.json").write_text(json.dumps(knobs) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data/compressor"))
    parser.add_argument("--takes", type=int, default=48, help="knob settings in the training folder")
    parser.add_argument("--test-takes", type=int, default=24, help="other knob settings in the test folder")
    parser.add_argument("--part", choices=["both", "train", "test"], default="both")
    args = parser.parse_args()
    if args.part in ("both", "train"):
        build(args.out / "train", material(args.shared, "train", seed=1), args.takes, seed=10)
        print(f"wrote {args.out}/train")
    if args.part in ("both", "test"):
        build(args.out / "test", material(args.shared, "test", seed=2), args.test_takes, seed=20)
        print(f"wrote {args.out}/test")


if __name__ == "__main__":
    main()
