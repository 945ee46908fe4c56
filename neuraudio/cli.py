"""The ``neuraudio`` command: a thin shell over the public API.

Every command follows the same conventions: errors are one sentence on stderr and exit status 1 (2 for a usage
error), a failed run leaves no partial output file, progress bars appear on work longer than a second unless
``--quiet`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import neuraudio
from neuraudio.audio import AudioError, audio_info, measure_levels
from neuraudio.data.tools import ToolError
from neuraudio.hub import ModelError
from neuraudio.runtime import EngineError
from neuraudio.datasets.common import DataError


class CLIError(Exception):
    """A user-facing failure of a command."""


def _progress(total: int, quiet: bool, desc: str, unit: str = "s", scale: float = 1.0):
    """A tqdm bar (shown only after one second) updated with absolute counts; a no-op when quiet."""
    if quiet:
        return None, lambda done: None
    from tqdm import tqdm

    bar = tqdm(total=round(total / scale, 2), desc=desc, unit=unit, delay=1.0, leave=False, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} {unit} [{elapsed}<{remaining}]")

    def update(done: int) -> None:
        bar.update(round(done / scale, 2) - bar.n)

    return bar, update


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda was asked for but no CUDA GPU is available.")
    return name


def cmd_info(args) -> None:
    for path in args.files:
        info = audio_info(path)
        bar, update = _progress(info.frames, args.quiet, path, scale=info.sample_rate)
        try:
            levels = measure_levels(path, progress=update)
        finally:
            if bar:
                bar.close()
        row = {
            "path": path, "format": info.format, "subtype": info.subtype, "sample_rate": info.sample_rate,
            "channels": info.channels, "duration_s": round(info.duration, 6),
            "peak_dbfs": round(levels.peak_dbfs, 2), "rms_dbfs": round(levels.rms_dbfs, 2),
            "floor_dbfs": round(levels.floor_dbfs, 2),
        }
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{path}: {info.format}/{info.subtype}, {info.sample_rate} Hz, {info.channels} ch, "
                  f"{info.duration:.3f} s, peak {row['peak_dbfs']:.2f} dBFS, RMS {row['rms_dbfs']:.2f} dBFS, "
                  f"noise floor {row['floor_dbfs']:.2f} dBFS")


def cmd_models(args) -> None:
    rows = neuraudio.list_models()
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        print(f"{row['name']}  [{row['task']}]  {row['sample_rate']} Hz, latency {row['latency']} samples "
              f"({row['stream_latency']} streaming at any block size)")
        print(f"    {row['summary']}")
        for name, k in row["knobs"].items():
            print(f"    {name:14s} {k['minimum']:g}..{k['maximum']:g} {k['unit']} (default {k['default']:g}): {k['doc']}")


def _parse_knobs(pairs: Sequence[str]) -> dict[str, float]:
    knobs = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            knobs[name] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise CLIError(f"--knob expects NAME=NUMBER, got {pair!r}.")
    return knobs


def cmd_effect(args) -> None:
    model = neuraudio.load(args.model)
    info = audio_info(args.input)
    bar, update = _progress(info.frames, args.quiet, "processing", scale=info.sample_rate)
    try:
        report = neuraudio.process_file(model, args.input, args.output, knobs=_parse_knobs(args.knob),
                                        bit_depth=args.bit_depth, device=_device(args.device), progress=update)
    finally:
        if bar:
            bar.close()
    if report.resampled:
        print(f"resampled {report.file_rate} Hz -> {report.model_rate} Hz for {args.model} and back", file=sys.stderr)
    if report.clipped:
        print(f"warning: {report.clipped} samples were clipped to the {args.bit_depth}-bit range", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {args.output}: {report.seconds:.2f} s of audio in {report.elapsed:.2f} s "
              f"(real-time factor {report.real_time_factor:.3f})")


def cmd_example(args) -> None:
    from neuraudio.examples import noisy_melody

    audio = noisy_melody(args.seconds, args.sample_rate)
    neuraudio.write_audio(args.output, audio, args.sample_rate, bit_depth="24")
    if not args.quiet:
        print(f"wrote {args.output}: {args.seconds:g} s at {args.sample_rate} Hz (tones with -50 dBFS noise)")


def cmd_train(args) -> None:
    try:
        from neuraudio.train.cli import run
    except ImportError as err:
        raise CLIError(f"training needs the train extra ({err.name} is missing): pip install 'neuraudio[train]'.") from None
    run([args.recipe, *args.overrides])


def cmd_export(args) -> None:
    from neuraudio.train.export import export_run

    folder = export_run(args.run_dir, args.out_dir, name=args.name, which=args.checkpoint)
    model = neuraudio.load(folder)
    if not args.quiet:
        print(f"wrote {folder}: {type(model).__name__}, {model.sample_rate} Hz, latency {model.latency} samples")


def cmd_eval(args) -> None:
    from neuraudio.evaluate import evaluate

    model = neuraudio.load(args.model)
    report = evaluate(args.task, model, args.data, progress=None if args.quiet else
                      (lambda name: print(f"  {name}", file=sys.stderr)))
    if args.json:
        print(json.dumps({"model": str(args.model), "data": str(args.data), **report}))
        return
    keys = list(report["mean"])
    print(f"{'item':30s} " + " ".join(f"{k:>10s}" for k in keys))
    for name, row in report["items"].items():
        print(f"{name[:30]:30s} " + " ".join(f"{row.get(k, float('nan')):10.4f}" for k in keys))
    print(f"{'mean':30s} " + " ".join(f"{report['mean'][k]:10.4f}" for k in keys))


def cmd_capture_signal(args) -> None:
    from neuraudio.effects.capture import capture_signal

    if args.minutes > 60:
        raise CLIError(f"--minutes {args.minutes:g} is more than an hour; captures of 3 to 10 minutes are typical.")
    signal, layout = capture_signal(args.sample_rate, args.minutes, args.seed)
    neuraudio.write_audio(args.output, signal, args.sample_rate, bit_depth="24")
    layout_path = Path(args.output).with_suffix(".json")
    layout_path.write_text(json.dumps(layout.__dict__, indent=1) + "\n")
    if not args.quiet:
        print(f"wrote {args.output} ({signal.shape[-1] / args.sample_rate:.1f} s at {args.sample_rate} Hz) and its "
              f"layout {layout_path}: play it through the gear, record the output at the same rate, then "
              f"`neuraudio align {args.output} RECORDING.wav --out output.wav`")


def cmd_bench(args) -> None:
    from neuraudio.runtime.bench import benchmark, format_report

    if args.block_size < 1 or args.seconds <= 0 or (args.threads is not None and args.threads < 1):
        raise CLIError("--block-size and --threads must be at least 1 and --seconds positive.")
    model = neuraudio.load(args.model)
    result = benchmark(model, device=_device(args.device), block_size=args.block_size, seconds=args.seconds,
                       threads=args.threads, channels=args.channels, dtype=args.dtype,
                       cuda_graph=not args.no_cuda_graph, name=args.model)
    if not args.json or not args.quiet:
        print(format_report(result))
    if args.json:
        print(json.dumps(result))


def cmd_data(args) -> None:
    import time

    from neuraudio.data import stats as data_stats

    if args.kind == "stats":
        if args.json:
            print(json.dumps(data_stats.stats(args.out)))
        else:
            print(data_stats.report(args.out))
        return
    if args.workers < 1:
        raise CLIError("--workers must be at least 1.")
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    if args.kind == "speech":
        from neuraudio.data.speech import build_speech

        bar, update = _progress(args.minutes * 60, args.quiet, "speech", unit="min", scale=60)
        try:
            entries = build_speech(args.out, args.minutes, args.sample_rate or 16000, args.seed, args.workers,
                                   real=args.real, progress=lambda m: update(m * 60))
        finally:
            if bar:
                bar.close()
        minutes = sum(e["seconds"] for e in entries) / 60
    elif args.kind == "music":
        from neuraudio.data.music import build_music

        bar, update = _progress(args.songs, args.quiet, "songs", unit="songs")
        try:
            entries = build_music(args.out, args.songs, args.seconds or 30.0, args.sample_rate or 44100, args.seed,
                                  args.workers, progress=update)
        finally:
            if bar:
                bar.close()
        minutes = sum(e["seconds"] for e in entries) / 60
        with_stems = sum(e["seconds"] * (len(e["stems"]) + 1) for e in entries) / 60
        if not args.quiet:
            print(f"{len(entries)} songs: {minutes:.2f} min of mixtures, {with_stems:.2f} min counting every stem")
    elif args.kind == "echo":
        from neuraudio.data.echo import build_echo

        if not args.speech:
            raise CLIError("data echo needs --speech DIR (a folder of speech, e.g. from `neuraudio data speech`).")
        bar, update = _progress(args.clips, args.quiet, "clips", unit="clips")
        try:
            entries = build_echo(args.out, args.clips, args.speech, args.noise, args.sample_rate or 16000,
                                 args.seconds or 8.0, args.seed, args.workers, progress=update)
        finally:
            if bar:
                bar.close()
        minutes = sum(e["seconds"] for e in entries) / 60
    else:
        from neuraudio.data.noise import build_noise

        bar, update = _progress(math.ceil(args.minutes * 60 / (args.seconds or 10.0)), args.quiet, "noise", unit="clips")
        try:
            entries = build_noise(args.out, args.minutes, args.sample_rate or 16000, args.seconds or 10.0, args.seed,
                                  speech=args.speech, music=args.music, real=args.real, workers=args.workers,
                                  progress=update)
        finally:
            if bar:
                bar.close()
        minutes = sum(e["seconds"] for e in entries) / 60
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    if not args.quiet:
        print(f"wrote {args.out}: {len(entries)} items, {minutes:.2f} min of audio in {wall:.1f} s "
              f"({cpu:.1f} CPU s: {minutes / max(cpu / 60, 1e-9):.1f} min of audio per CPU minute)")


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the builders' workers and tools)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cmd_align(args) -> None:
    from neuraudio.effects.capture import CaptureLayout, align

    signal, rate = neuraudio.read_audio(args.input, channels=1)
    recording, rec_rate = neuraudio.read_audio(args.recording, channels=1)
    if rec_rate != rate:
        raise CLIError(f"{args.recording}: recorded at {rec_rate} Hz but the input is {rate} Hz; record at the same rate.")
    layout = None
    layout_path = Path(args.input).with_suffix(".json")
    if layout_path.is_file():
        layout = CaptureLayout(**json.loads(layout_path.read_text()))
    aligned, report = align(signal, recording, rate, layout, args.max_delay_ms / 1000)
    for line in report.lines():
        print(line)
    if args.out:
        neuraudio.write_audio(args.out, aligned, rate, bit_depth="32f", inputs=[args.input, args.recording])
        print(f"wrote {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuraudio", description="Neural audio signal processing.")
    parser.add_argument("--version", action="version", version=f"neuraudio {neuraudio.__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bars or chatter")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", parents=[common], help="format, duration and levels of audio files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("models", parents=[common], help="list the available models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("effect", parents=[common], help="process a file through an effect model")
    p.add_argument("model", help="model name (see `neuraudio models`)")
    p.add_argument("input")
    p.add_argument("output", help=".wav or .flac")
    p.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE", help="knob value (repeatable)")
    p.add_argument("--bit-depth", choices=["16", "24", "32f"], default="24")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    p.set_defaults(func=cmd_effect)

    p = sub.add_parser("capture-signal", parents=[common], help="write a test signal to play through your gear")
    p.add_argument("output", help=".wav or .flac (a layout .json is written beside it)")
    p.add_argument("--sample-rate", type=int, default=48000)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_capture_signal)

    p = sub.add_parser("align", parents=[common], help="find the delay and polarity of a recording of the capture signal")
    p.add_argument("input", help="the capture signal that was played")
    p.add_argument("recording", help="what the gear returned")
    p.add_argument("--out", help="write the aligned recording here (.wav/.flac)")
    p.add_argument("--max-delay-ms", type=float, default=500.0)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("train", help="train a model from a recipe (LightningCLI; needs the train extra)",
                       add_help=False)
    p.add_argument("recipe", help="recipe YAML (e.g. recipes/effects/linear.yaml), or --help")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="--section.key value ... (e.g. --data.root DIR)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", parents=[common], help="turn a training run into a model folder")
    p.add_argument("run_dir", help="the run's --trainer.default_root_dir")
    p.add_argument("out_dir", help="new folder for config.json + model.safetensors + README.md")
    p.add_argument("--name", help="model name (default: the folder's name)")
    p.add_argument("--checkpoint", default="best", help="best (lowest validation loss), last, or a path")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("eval", parents=[common], help="metrics of a model over a folder in its task's layout")
    p.add_argument("task", choices=["effect", "enhancement", "vocoder", "separation", "echo"])
    p.add_argument("--model", required=True, help="model name or folder")
    p.add_argument("--data", required=True, help="folder in the task's layout")
    p.add_argument("--json", action="store_true", help="one JSON object: items and means")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", parents=[common], help="offline and real-time (per-block) speed of a model")
    p.add_argument("model", help="model name or folder")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    p.add_argument("--block-size", type=int, default=128, help="samples per host block (default 128)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, like an audio thread)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of test audio (default 10)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    p.add_argument("--no-cuda-graph", action="store_true", help="run eagerly on CUDA (to compare)")
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object of the figures")
    p.set_defaults(func=cmd_bench)

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

    p = sub.add_parser("example", parents=[common], help="write a generated example signal to try commands on")
    p.add_argument("output", help=".wav or .flac")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--sample-rate", type=int, default=48000)
    p.set_defaults(func=cmd_example)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        # Everything after `train` belongs to LightningCLI (including --help), not to argparse.
        args = argparse.Namespace(command="train", recipe=argv[1] if len(argv) > 1 else "--help",
                                  overrides=argv[2:], func=cmd_train)
    else:
        args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (AudioError, ModelError, CLIError, EngineError, ToolError, ValueError, FileNotFoundError,
            DataError) as err:
        print(f"neuraudio {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"neuraudio {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
