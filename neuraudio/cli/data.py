"""``neuraudio data``: build synthetic training material, or describe a built folder."""

from __future__ import annotations

import json
import math
import time

from neuraudio.cli.common import CLIError, progress_bar


def cmd_data(args) -> int:
    from neuraudio.data import stats as data_stats

    if args.kind == "stats":
        if args.json:
            print(json.dumps(data_stats.stats(args.out)))
        else:
            print(data_stats.report(args.out))
        return 0
    if args.workers < 1:
        raise CLIError("--workers must be at least 1.")
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    if args.kind == "speech":
        from neuraudio.data.speech import build_speech

        with progress_bar(args.minutes * 60, args.quiet, "speech", unit="min", scale=60) as update:
            entries = build_speech(args.out, args.minutes, args.sample_rate or 16000, args.seed, args.workers,
                                   real=args.real, progress=lambda m: update(m * 60))
        minutes = sum(e["seconds"] for e in entries) / 60
    elif args.kind == "music":
        from neuraudio.data.music import build_music

        with progress_bar(args.songs, args.quiet, "songs", unit="songs") as update:
            entries = build_music(args.out, args.songs, args.seconds or 30.0, args.sample_rate or 44100, args.seed,
                                  args.workers, progress=update)
        minutes = sum(e["seconds"] for e in entries) / 60
        with_stems = sum(e["seconds"] * (len(e["stems"]) + 1) for e in entries) / 60
        if not args.quiet:
            print(f"{len(entries)} songs: {minutes:.2f} min of mixtures, {with_stems:.2f} min counting every stem")
    elif args.kind == "echo":
        from neuraudio.data.echo import build_echo

        if not args.speech:
            raise CLIError("data echo needs --speech DIR (a folder of speech, e.g. from `neuraudio data speech`).")
        with progress_bar(args.clips, args.quiet, "clips", unit="clips") as update:
            entries = build_echo(args.out, args.clips, args.speech, args.noise, args.sample_rate or 16000,
                                 args.seconds or 8.0, args.seed, args.workers, progress=update)
        minutes = sum(e["seconds"] for e in entries) / 60
    else:
        from neuraudio.data.noise import build_noise

        clips = math.ceil(args.minutes * 60 / (args.seconds or 10.0))
        with progress_bar(clips, args.quiet, "noise", unit="clips") as update:
            entries = build_noise(args.out, args.minutes, args.sample_rate or 16000, args.seconds or 10.0, args.seed,
                                  speech=args.speech, music=args.music, real=args.real, workers=args.workers,
                                  progress=update)
        minutes = sum(e["seconds"] for e in entries) / 60
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    if not args.quiet:
        print(f"wrote {args.out}: {len(entries)} items, {minutes:.2f} min of audio in {wall:.1f} s "
              f"({cpu:.1f} CPU s: {minutes / max(cpu / 60, 1e-9):.1f} min of audio per CPU minute)")
    return 0


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the builders' workers and tools)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def add_parsers(sub, common) -> None:
    p = sub.add_parser("data", parents=[common], help="build synthetic training material, or describe a built folder")
    p.add_argument("kind", choices=["speech", "music", "echo", "noise", "stats"])
    p.add_argument("out", help="output folder (for stats: the folder to describe)")
    p.add_argument("--minutes", type=float, default=10.0, help="speech, noise: minutes of audio (default 10)")
    p.add_argument("--songs", type=int, default=10, help="music: number of songs (default 10)")
    p.add_argument("--clips", type=int, default=100, help="echo: number of clips (default 100)")
    p.add_argument("--seconds", type=float, help="music: song length (30); echo: clip length (8); noise: clip (10)")
    p.add_argument("--sample-rate", type=int, help="Hz (speech, echo, noise: 16000; music: 44100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--speech", help="echo, noise (babble): a folder of speech")
    p.add_argument("--noise", help="echo: a folder of noise (default: generated colored noise)")
    p.add_argument("--music", help="noise: a folder of music for music beds")
    p.add_argument("--real", help="speech: real speech to mix in; noise: real noise recordings")
    p.add_argument("--json", action="store_true", help="stats: one JSON object")
    p.set_defaults(func=cmd_data)
