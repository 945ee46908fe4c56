"""Separators side by side on songs of stems (DIR/<song>/<stem>.wav, e.g. data/separation_val from
recipes/separation/prepare.py):

* quality: per stem, SDR and SI-SDR of each model's estimate (mean over songs, each song's first ``--seconds``),
  beside the mixture itself as every stem's estimate (the floor); for a two-stem vocals model, vocals NSDR (SDR over
  the mixture's). SI-SDR is reported beside SDR because masking rewards quiet estimates. A stem that is the whole
  mixture in a song (the accompaniment of an instrumental, where every estimate scores ~100 dB) is left out there.
  ``--stems`` names the data's stems (e.g. ``bass drums guitar lead piano strings vocals`` of ``neuraudio data music``
  songs, for a query model's instruments). ``MODEL@N`` runs an offline windowed model with ``N`` shifts
  (``ChunkedProcessor.set_shifts``).
  ``query:MODEL`` runs a query-conditioned model once per stem, its query 3 s of that stem from ``--query-offset``
  seconds into the same song (after the scored part, so the query never overlaps what it is scored on), or with
  ``--query-song next`` from the next song that has that stem (a clip of *an* instrument, not of this recording).
* speed: the real-time factor of each model on a 30 s stereo excerpt with ``--threads`` threads, or on a CUDA GPU
  with ``--device cuda`` (the model, the input and the output on the GPU; timed after a warm-up pass).

    python benchmarks/separation.py quality --data data/separation_val hybrid-4stem query:query-bandsplit
    python benchmarks/separation.py quality --data data/separation_test hybrid-4stem hybrid-4stem@4
    python benchmarks/separation.py speed hybrid-4stem --threads 2
    python benchmarks/separation.py speed hybrid-4stem --device cuda
    python benchmarks/separation.py toy hybrid-4stem vocals-stream query:query-bandsplit
    python benchmarks/separation.py pictures hybrid-4stem --song ../shared/data/music/mixture_demucs_test.flac \
        --out pretrained/hybrid-4stem/stems.png

* toy: each model on ``neuraudio.examples.toy_song`` (the signal of tests/test_separation_models.py): SDR, SI-SDR
  and level per stem beside the mixture's, and the vocals left on an instrumental.
* silence: an offline separator on digital silence and on the toy song, with and without ``subtract_silence``
  (``python benchmarks/separation.py silence hybrid-4stem``).
* pictures: log spectrograms of a song (any audio file, no stems needed) and of each stem a model separates from
  it, on one colour scale (a quiet stem looks quiet); a query model draws one row per ``--query NAME=FILE[@SECONDS]``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import neuraudio
from neuraudio import metrics
from neuraudio.datasets.separation import SeparationFolder


def load(spec: str):
    """``[query:]MODEL[@SHIFTS]``: a model, with ``SHIFTS`` averaged passes for an offline windowed one."""
    name, _, shifts = spec.removeprefix("query:").partition("@")
    model = neuraudio.load(name)
    return model.set_shifts(int(shifts)) if shifts else model


def songs(data: str, rate: int, seconds: float, groups: dict | None, stems: list[str]):
    folder = SeparationFolder(data, rate, 2, stems, groups)
    for name in sorted(folder.songs):
        length = min(folder.frames(name), round(seconds * rate))
        yield name, folder, folder.read(name, 0, length)


def query_clip(folder, song: str, stem: str, offset: int, rate: int, other_song: bool):
    """3 s of ``stem`` from ``offset`` in ``song``, or (``other_song``) in the next song after it (sorted, cyclic)
    where that stretch is audible; ``None`` when there is none."""
    names = sorted(folder.songs)
    start = names.index(song)
    candidates = [names[(start + k) % len(names)] for k in range(1, len(names))] if other_song else [song]
    for name in candidates:
        if stem not in folder.songs[name] and stem not in folder.groups:
            continue
        clip = folder.read_stem(name, stem, offset, max(0, min(3 * rate, folder.frames(name) - offset)))
        if clip.shape[-1] and float(clip.pow(2).mean()) >= 1e-8:
            return clip
    return None


def estimate(spec: str, model, mixture: torch.Tensor, stems: list[str], song, folder, offset: int,
             other_song: bool = False):
    """``{stem: (2, T)}`` for the stems the model gives (``model`` is None for the mixture itself)."""
    if spec == "mixture":
        return {s: mixture for s in stems}
    if spec.startswith("query:"):
        out = {}
        for s in stems:
            clip = query_clip(folder, song, s, offset, model.sample_rate, other_song)
            if clip is None:
                continue  # no audible query
            out[s] = model.with_query(clip).process(mixture)[0]
        return out
    y = model.process(mixture)
    return {s: y[list(model.stems).index(s)] for s in stems if s in model.stems}


def quality(args) -> None:
    torch.set_num_threads(args.threads)
    groups = {"accompaniment": ["drums", "bass", "other"]} if "accompaniment" in args.stems else None
    scores: dict = {}
    count = 0
    models = {spec: load(spec) for spec in args.models}  # loaded once
    for song, folder, item in songs(args.data, 44100, args.seconds, groups, args.stems):
        count += 1
        for spec in ["mixture", *args.models]:
            with torch.inference_mode():
                out = estimate(spec, models.get(spec), item["mixture"], args.stems, song, folder,
                               round(args.query_offset * 44100), args.query_song == "next")
            for i, stem in enumerate(args.stems):
                target = item["stems"][i]
                if stem not in out or float(target.pow(2).mean()) < 1e-8:
                    continue
                if float((item["mixture"] - target).pow(2).mean()) < 1e-8:
                    continue  # the stem is the whole mixture (accompaniment of an instrumental): nothing to separate
                row = scores.setdefault((spec, stem), [])
                row.append((float(metrics.sdr(out[stem], target)), float(metrics.si_sdr(out[stem], target))))
    print(f"{args.data}: {count} songs, first {args.seconds:g} s of each; mean over songs where the stem sounds "
          "and is not the whole mixture")
    w = max(28, 2 + max(len(spec) for spec in args.models))
    print(f"{'model':<{w}}{'stem':<15}{'SDR':>8}{'SI-SDR':>8}")
    for spec in ["mixture", *args.models]:
        sdrs, floors = [], []
        for stem in args.stems:
            values = scores.get((spec, stem))
            if not values:
                continue
            sdr = sum(v[0] for v in values) / len(values)
            si = sum(v[1] for v in values) / len(values)
            sdrs.append(sdr)
            floors.append(sum(v[0] for v in scores[("mixture", stem)]) / len(scores[("mixture", stem)]))
            extra = ""
            if stem == "vocals" and ("mixture", "vocals") in scores and spec != "mixture":
                floor = sum(v[0] for v in scores[("mixture", "vocals")]) / len(scores[("mixture", "vocals")])
                extra = f"   NSDR {sdr - floor:+.2f}"
            print(f"{spec:<{w}}{stem:<15}{sdr:8.2f}{si:8.2f}{extra}")
        if sdrs:
            same = "" if spec == "mixture" or len(sdrs) == len([k for k in scores if k[0] == "mixture"]) else \
                f"   (mixture {sum(floors) / len(floors):.2f} on these {len(sdrs)} stems)"
            print(f"{spec:<{w}}{'mean':<15}{sum(sdrs) / len(sdrs):8.2f}{same}")


def speed(args) -> None:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x = 0.1 * torch.randn(2, 30 * 44100, generator=torch.Generator().manual_seed(0)).to(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} thread(s)"
    print(f"30 s of 44.1 kHz stereo, {where}, best of 2" + (" after a warm-up" if device.type == "cuda" else ""))
    for spec in args.models:
        model = load(spec).to(device)
        if model.takes_query:
            model = model.with_query(x[:, : 3 * 44100])
        best = float("inf")
        for _ in range(3 if device.type == "cuda" else 2):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with torch.inference_mode():
                model.process(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - start
            if device.type != "cuda" or _ > 0:  # the first CUDA pass pays for kernel selection
                best = min(best, elapsed)
        print(f"{spec:<28} {best:7.2f} s   real-time factor {best / 30:.3f}")


def pictures(args) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from plots import spectrograms

    torch.set_num_threads(args.threads)
    model = neuraudio.load(args.model)
    mixture = neuraudio.read_audio(args.song, sample_rate=model.sample_rate)[0]
    mixture = mixture.expand(2, -1) if mixture.shape[0] == 1 else mixture[:2]
    mixture = mixture[:, round(args.start * model.sample_rate):][:, : round(args.seconds * model.sample_rate)]
    rows = [(f"mixture: {Path(args.song).name}", mixture.mean(0))]
    if model.takes_query:
        if not args.query:
            raise SystemExit(f"{args.model} extracts what a query names: give --query NAME=FILE[@SECONDS] (one or more).")
        for spec in args.query:
            name, _, where = spec.partition("=")
            path, _, start = where.partition("@")
            clip = neuraudio.read_audio(path, sample_rate=model.sample_rate)[0]
            clip = clip.expand(2, -1) if clip.shape[0] == 1 else clip[:2]
            at = round(float(start or 0) * model.sample_rate)
            clip = clip[:, at : at + 3 * model.sample_rate]
            with torch.inference_mode():
                stem = model.with_query(clip).process(mixture)[0]
            rows.append((f"{name} ({args.model}, query: 3 s of {Path(path).name})", stem.mean(0)))
    else:
        with torch.inference_mode():
            stems = model.process(mixture)
        rows += [(f"{stem} ({args.model})", stems[i].mean(0)) for i, stem in enumerate(model.stems)]
    spectrograms(rows, args.out, rate=model.sample_rate, n_fft=4096, hop=1024, height=1.8, shared_scale=True)


def toy_query(model, mix: torch.Tensor, stems=None) -> tuple[torch.Tensor, list[str]]:
    """A query model on ``mix`` (a toy song), each toy stem (or those of ``stems``) queried by its first 3 s in
    ``toy_song(seed=5)``: ``((stems, 2, T), names)``; the numbers that tests/test_separation_models.py asserts on."""
    from neuraudio.examples import toy_song

    queries = toy_song(3.0, model.sample_rate, seed=5)
    names = list(stems or queries)
    with torch.inference_mode():
        out = [model.with_query(queries[n]).process(mix)[0] for n in names]
    return torch.stack(out), names


def toy(args) -> None:
    from neuraudio.examples import toy_song

    torch.set_num_threads(args.threads)
    song = toy_song(6.0, 44100, seed=3)
    mix = sum(song.values())
    instrumental = toy_song(6.0, 44100, seed=4, vocals=False)
    inst_mix = sum(instrumental.values())
    print("toy_song(6 s, seed 3): per stem, SDR and SI-SDR of the estimate and of the mixture, and the estimate's "
          "level against the true stem; vocals level on an instrumental (seed 4) against its mixture")
    print(f"{'model':<24}{'stem':<9}{'SDR':>7}{'SI-SDR':>8}{'mix SDR':>9}{'mix SI':>8}{'level dB':>10}")
    for spec in args.models:
        model = load(spec)
        if model.takes_query:  # each stem queried by 3 s of that stem from another toy song (seed 5)
            y, stem_names = toy_query(model, mix)
            y_inst = None
            queried = toy_query(model, inst_mix, ["vocals"])[0][0]
        else:
            with torch.inference_mode():
                y = model.process(mix)
                y_inst = model.process(inst_mix)
            stem_names = model.stems
        for i, stem in enumerate(stem_names):
            if stem not in song:
                continue
            t = song[stem]
            level = 10 * torch.log10(y[i].pow(2).mean() / t.pow(2).mean())
            print(f"{spec:<24}{stem:<9}{float(metrics.sdr(y[i], t)):7.2f}{float(metrics.si_sdr(y[i], t)):8.2f}"
                  f"{float(metrics.sdr(mix, t)):9.2f}{float(metrics.si_sdr(mix, t)):8.2f}{float(level):10.1f}")
        if y_inst is None:
            level = float(10 * torch.log10(queried.pow(2).mean() / inst_mix.pow(2).mean()))
            print(f"{spec:<24}instrumental, queried for vocals: {level:.1f} dB under the mixture")
        elif "vocals" in model.stems:
            v = y_inst[list(model.stems).index("vocals")]
            print(f"{spec:<24}instrumental: vocals {float(10 * torch.log10(v.pow(2).mean() / inst_mix.pow(2).mean())):.1f} dB under the mixture")


def silence(args) -> None:
    """What an offline separator gives for digital silence and for the toy song, with and without
    ``subtract_silence``: per stem, the output's constant offset, the rms of what repeats with the model's frame hop,
    the peak, and on the toy song how far the 11025 Hz line stands above the spectrum around it."""
    from neuraudio.examples import toy_song

    torch.set_num_threads(args.threads)
    model = load(args.model)
    rate, hop = model.sample_rate, model.frame_hop
    song = sum(toy_song(6.0, rate, seed=3).values())
    print(f"{args.model}: 6 s of digital silence, and toy_song(6 s, seed 3); hop {hop}")
    print(f"{'subtract_silence':<18}{'stem':<9}{'offset dBFS':>12}{'hop-periodic dBFS':>19}{'peak':>9}{'11 kHz line dB':>16}")
    for flag in (False, True):
        model.subtract_silence = flag
        with torch.inference_mode():
            quiet, music = model.process(torch.zeros(2, 6 * rate)), model.process(song)
        for i, stem in enumerate(model.stems):
            y = quiet[i]
            offset = y.mean(-1, keepdim=True)
            usable = (y.shape[-1] - rate) // hop * hop  # whole hops after the first second
            periodic = (y - offset)[:, rate : rate + usable].reshape(2, -1, hop).mean(1)
            m = music[i].mean(0)
            spec = torch.fft.rfft(m * torch.hann_window(m.numel())).abs()
            k = round(11025 * m.numel() / rate)
            line = 20 * torch.log10(spec[k - 2 : k + 3].max() / spec[k - 600 : k - 100].median())
            db = lambda v: 20 * math.log10(max(float(v), 1e-12))  # noqa: E731
            print(f"{str(flag):<18}{stem:<9}{db(offset.abs().max()):12.1f}{db(periodic.pow(2).mean().sqrt()):19.1f}"
                  f"{float(y.abs().max()):9.4f}{float(line):16.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("models", nargs="+")
    q.add_argument("--data", required=True)
    q.add_argument("--stems", nargs="+", default=["drums", "bass", "other", "vocals"])
    q.add_argument("--seconds", type=float, default=20.0)
    q.add_argument("--query-offset", type=float, default=22.0,
                   help="query:MODEL: where its 3 s query starts in the song (after the scored part)")
    q.add_argument("--query-song", choices=["same", "next"], default="same",
                   help="query:MODEL: the query from the song itself, or from the next song that has that stem")
    q.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("speed")
    s.add_argument("models", nargs="+")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p = sub.add_parser("pictures")
    p.add_argument("model")
    p.add_argument("--song", required=True, help="an audio file (a mixture; no stems needed)")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--start", type=float, default=0.0, help="seconds into the song")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--query", nargs="+", metavar="NAME=FILE[@SECONDS]",
                   help="a query model: the stems to draw, each named by 3 s of FILE from SECONDS")
    z = sub.add_parser("silence")
    z.add_argument("model")
    z.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("toy")
    t.add_argument("models", nargs="+")
    t.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    {"quality": quality, "speed": speed, "pictures": pictures, "toy": toy, "silence": silence}[args.command](args)


if __name__ == "__main__":
    main()
