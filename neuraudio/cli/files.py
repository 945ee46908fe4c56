"""Commands on audio files: ``info``, ``effect``, ``example``, ``capture-signal``, ``align`` (the other families'
commands are in :mod:`neuraudio.cli.families`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import neuraudio
from neuraudio.audio import WRITE_FORMATS, AudioError, audio_files_under, audio_info, measure_levels
from neuraudio.cli.common import CLIError, add_threads_option, device, parse_knobs, progress_bar, set_threads

EFFECT_EXAMPLES = """examples:
  neuraudio effect klon-centaur guitar.wav driven.wav --knob gain=0.6
  neuraudio effect compressor vocals.flac squashed.flac --knob threshold_db=-30 --knob ratio=8
  neuraudio effect spectral-gate take1.wav take2.wav takes/ -o gated/      (files and folders into gated/)
  neuraudio effect klon-centaur --help                                    (this help plus the model's knobs)
  neuraudio models klon-centaur                                           (a model's knobs, ranges and units)
"""


def report_error(command: str, err: Exception) -> None:
    print(f"neuraudio {command}: error: {err}", file=sys.stderr)


def cmd_info(args) -> int:
    failed = 0
    for path in args.files:
        try:
            info = audio_info(path)
            with progress_bar(info.frames, args.quiet, path, scale=info.sample_rate) as update:
                levels = measure_levels(path, progress=update)
        except AudioError as err:
            report_error("info", err)
            failed += 1
            continue
        row = {
            "path": path, "format": info.format, "subtype": info.subtype, "sample_rate": info.sample_rate,
            "channels": info.channels, "duration_s": round(info.duration, 6),
            "peak_dbfs": round(levels.peak_dbfs, 2), "rms_dbfs": round(levels.rms_dbfs, 2),
            "floor_dbfs": round(levels.floor_dbfs, 2),
        }
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"{path}: {info.format}/{info.subtype}, {info.sample_rate} Hz, {info.channels} ch, "
                  f"{info.duration:.3f} s, peak {row['peak_dbfs']:.2f} dBFS, RMS {row['rms_dbfs']:.2f} dBFS, "
                  f"noise floor {row['floor_dbfs']:.2f} dBFS", flush=True)
    if failed and len(args.files) > 1:
        report_error("info", CLIError(f"{failed} of {len(args.files)} files could not be read."))
    return 1 if failed else 0


def _output_name(path: Path) -> str:
    """The input's name, with ``.wav`` where its format cannot be written."""
    return path.name if path.suffix.lower() in WRITE_FORMATS else path.stem + ".wav"


def effect_jobs(paths: list[str], out_dir: str | None) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs: ``IN OUT``, or inputs (files, folders searched recursively) into ``out_dir``."""
    if out_dir is None:
        if len(paths) != 2:
            raise CLIError(f"effect takes IN OUT, or input files and folders with -o DIR; got {len(paths)} paths.")
        source, target = (Path(p) for p in paths)
        if source.is_dir():
            raise CLIError(f"{source}: is a folder; write its files into a folder with -o DIR.")
        if target.is_dir():
            return [(source, target / _output_name(source))]
        return [(source, target)]
    out = Path(out_dir)
    jobs: dict[Path, Path] = {}
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files = audio_files_under(path)
            if not files:
                raise CLIError(f"{path}: holds no audio files.")
            pairs = [(f, out / f.relative_to(path).parent / _output_name(f)) for f in files]
        else:
            pairs = [(path, out / _output_name(path))]
        for source, target in pairs:
            if target in jobs:
                raise CLIError(f"{source} and {jobs[target]} would both be written to {target}; rename one.")
            jobs[target] = source
    return [(source, target) for target, source in jobs.items()]


def _report_file(args, report, written: str) -> None:
    """The lines every file command prints after a file: resampling (stderr), clipping (stderr), what was written."""
    if report.resampled:
        print(f"resampled {report.file_rate} Hz -> {report.model_rate} Hz for {args.model} and back", file=sys.stderr)
    if report.clipped:
        print(f"warning: {written}: {report.clipped} samples were clipped to the output format's range",
              file=sys.stderr)
    if not args.quiet:
        print(f"wrote {written}: {report.seconds:.2f} s of audio in {report.elapsed:.2f} s "
              f"(real-time factor {report.real_time_factor:.3f})", flush=True)


def cmd_effect(args, command: str = "effect", model=None) -> int:
    jobs = effect_jobs(args.paths, args.out_dir)
    knobs = parse_knobs(args.knob)
    model = model or neuraudio.load(args.model)
    if model.stems:
        raise CLIError(f"{args.model} has stems; use `neuraudio separate`.")
    if len(model.input_channels()) > 1:
        raise CLIError(f"{args.model} takes {len(model.input_channels())} inputs "
                       f"({', '.join(model.input_channels())}); use `neuraudio aec` or neuraudio.process_files.")
    model.check_knob_names(knobs)
    for name, value in knobs.items():
        model.knobs[name].check(name, value)
    run_device = device(args.device)
    set_threads(args.threads)
    failed = 0
    for source, target in jobs:
        try:
            info = audio_info(source)
            if len(jobs) > 1:
                target.parent.mkdir(parents=True, exist_ok=True)
            with progress_bar(info.frames, args.quiet, source.name, scale=info.sample_rate) as update:
                report = neuraudio.process_file(model, source, target, knobs=knobs, bit_depth=args.bit_depth,
                                                device=run_device, progress=update)
        except (AudioError, OSError) as err:
            if len(jobs) == 1:
                raise
            report_error(command, err)
            failed += 1
            continue
        _report_file(args, report, str(target))
    if failed:
        report_error(command, CLIError(f"{failed} of {len(jobs)} files failed; the others were written."))
    return 1 if failed else 0












def cmd_example(args) -> int:
    from neuraudio.examples import noisy_melody

    audio = noisy_melody(args.seconds, args.sample_rate)
    neuraudio.write_audio(args.output, audio, args.sample_rate, bit_depth="24")
    if not args.quiet:
        print(f"wrote {args.output}: {args.seconds:g} s at {args.sample_rate} Hz (tones with -50 dBFS noise)")
    return 0


def cmd_capture_signal(args) -> int:
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
    return 0


def _writable_destination(path: Path) -> None:
    """Check before long work that ``path`` can be written: a known format, and a folder that exists or can be
    made (its nearest existing ancestor is a writable folder)."""
    if path.suffix.lower() not in WRITE_FORMATS:
        raise CLIError(f"{path}: can only write {', '.join(WRITE_FORMATS)} files.")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise CLIError(f"{path}: cannot create or write in {ancestor}.")


def cmd_align(args) -> int:
    from neuraudio.effects.capture import CaptureLayout, align

    out = Path(args.out) if args.out else None
    if out is not None:
        _writable_destination(out)
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
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)  # the capture flow writes my_gear/take1/output.wav
        neuraudio.write_audio(out, aligned, rate, bit_depth="32f", inputs=[args.input, args.recording])
        print(f"wrote {out}")
    return 0


def add_run_options(p, knobs: bool = True) -> None:
    """The options of every command that runs a model over files."""
    p.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="knob value (repeatable)" if knobs else argparse.SUPPRESS)
    p.add_argument("--bit-depth", choices=["16", "24", "32f"], default="24",
                   help="WAV/FLAC sample format (default 24; FLAC: 16 or 24); OGG and MP3 are lossy")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    add_threads_option(p)


def add_parsers(sub, common) -> None:
    p = sub.add_parser("info", parents=[common], help="format, duration and levels of audio files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("effect", parents=[common], help="process files through an effect model",
                       usage="neuraudio effect MODEL IN OUT [options]\n"
                             "       neuraudio effect MODEL IN... -o DIR [options]",
                       epilog=EFFECT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model name or folder (see `neuraudio models`)")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="IN OUT; or, with -o, input files and folders (searched recursively)")
    p.add_argument("-o", "--out-dir", metavar="DIR", help="write each input here under its own name (made if absent)")
    add_run_options(p)
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
    p.add_argument("--out", help="write the aligned recording here (its folder is made if absent)")
    p.add_argument("--max-delay-ms", type=float, default=500.0)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("example", parents=[common], help="write a generated example signal to try commands on")
    p.add_argument("output", help=".wav, .flac, .ogg or .mp3")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--sample-rate", type=int, default=48000)
    p.set_defaults(func=cmd_example)
