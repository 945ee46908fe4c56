"""Commands of the model families beyond effects: ``enhance``, ``aec``, ``vocode``, ``stretch``, ``separate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import neuraudio
from neuraudio.audio import AudioError, audio_info
from neuraudio.cli.common import CLIError, add_threads_option, device, parse_knobs, progress_bar, set_threads
from neuraudio.cli.files import _output_name, _report_file, add_run_options, cmd_effect, effect_jobs, report_error


def cmd_enhance(args) -> int:
    model = neuraudio.load(args.model)
    if model.task != "enhancement":
        raise CLIError(f"{args.model} is a model of the {model.task} task; `enhance` needs a speech enhancement model "
                       "(see `neuraudio models`).")
    return cmd_effect(args, command="enhance", model=model)


def cmd_vocode(args) -> int:
    import numpy as np

    model = neuraudio.load(args.model)
    if not hasattr(model, "synthesize"):
        raise CLIError(f"{args.model} is not a vocoder (it has no synthesize); see `neuraudio models`.")
    if args.mel is None:
        if args.input is None:
            raise CLIError("vocode takes IN OUT (analysis -> resynthesis), or --mel FEATURES.npy OUT.")
        return cmd_effect(argparse.Namespace(**{**vars(args), "paths": [args.input, args.output], "out_dir": None}),
                          command="vocode", model=model)
    try:
        features = np.load(args.mel, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CLIError(f"{args.mel}: not a readable .npy array of mel frames ({err}).") from None
    import torch

    mel = torch.from_numpy(np.asarray(features, dtype=np.float32))
    if mel.ndim not in (2, 3):
        raise CLIError(f"{args.mel}: mel frames must be shaped (bands, frames) or (channels, bands, frames), got "
                       f"{tuple(mel.shape)}.")
    set_threads(args.threads)
    with torch.inference_mode():
        audio = model.synthesize(mel if mel.ndim == 3 else mel[None])
    neuraudio.write_audio(args.output, audio, model.sample_rate, bit_depth=args.bit_depth)
    if not args.quiet:
        print(f"wrote {args.output}: {audio.shape[-1] / model.sample_rate:.2f} s at {model.sample_rate} Hz from "
              f"{mel.shape[-1]} mel frames")
    return 0


def cmd_stretch(args) -> int:
    from neuraudio.vocoding import time_stretch

    if not 0.05 <= args.rate <= 20:
        raise CLIError(f"--rate {args.rate:g} is outside 0.05..20 (2: twice as fast, 0.5: twice as long).")
    set_threads(args.threads)
    audio, rate = neuraudio.read_audio(args.input)
    import torch

    with torch.inference_mode():
        stretched = time_stretch(audio, args.rate)
    clipped = neuraudio.write_audio(args.output, stretched, rate, bit_depth=args.bit_depth, inputs=[args.input])
    if clipped:
        print(f"warning: {args.output}: {clipped} samples were clipped to the output format's range", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {args.output}: {audio.shape[-1] / rate:.2f} s -> {stretched.shape[-1] / rate:.2f} s "
              f"(rate {args.rate:g}, pitch kept)")
    return 0


MAX_LENGTH_MISMATCH_S = 0.5  # mic and ref of different lengths: more than this is refused, not guessed at


def cmd_aec(args) -> int:
    model = neuraudio.load(args.model)
    if list(model.input_channels()) != ["mic", "ref"]:
        raise CLIError(f"{args.model} does not take a microphone and a reference; `aec` needs an echo canceller "
                       "(see `neuraudio models`).")
    knobs = parse_knobs(args.knob)
    set_threads(args.threads)
    info, ref = audio_info(args.mic), audio_info(args.ref)
    if abs(info.duration - ref.duration) > MAX_LENGTH_MISMATCH_S:
        raise CLIError(f"{args.mic} lasts {info.duration:.2f} s and {args.ref} {ref.duration:.2f} s: the reference "
                       f"must cover the same stretch as the microphone (trim both to it; up to "
                       f"{MAX_LENGTH_MISMATCH_S:g} s of difference is padded with silence or cut at the end).")
    with progress_bar(info.frames, args.quiet, Path(args.mic).name, scale=info.sample_rate) as update:
        report = neuraudio.process_files(model, [args.mic, args.ref], [args.output], knobs=knobs,
                                         bit_depth=args.bit_depth, device=device(args.device), progress=update)
    _report_file(args, report, args.output)
    return 0


def cmd_separate(args) -> int:
    model = neuraudio.load(args.model)
    if not model.stems:
        raise CLIError(f"{args.model} has no stems; `separate` needs a separator (see `neuraudio models`).")
    if args.query and not model.takes_query:
        raise CLIError(f"{args.model} takes no query clip; drop --query.")
    labels = list(model.stems)  # the output files' names, per stem
    if model.takes_query:
        if not args.query:
            raise CLIError(f"{args.model} is told what to extract by an example: give --query CLIP.")
        clip, rate = neuraudio.read_audio(args.query)
        model = model.with_query(clip, rate)
        labels = [args.name or Path(args.query).stem]
        if not labels[0] or labels[0] in (".", "..") or "/" in labels[0] or "\\" in labels[0]:
            raise CLIError(f"--name {labels[0]!r}: give a plain file name for the extracted source, e.g. guitar.")
    elif args.name:
        raise CLIError(f"--name names what a query model extracts; {args.model} writes its stems by their names.")
    if args.shifts is not None:
        from neuraudio.stream.chunked import ChunkedProcessor

        if not isinstance(model, ChunkedProcessor):
            raise CLIError(f"--shifts averages passes of an offline windowed model; {args.model} is not one "
                           f"(hybrid-4stem and query-bandsplit are).")
        try:
            model.set_shifts(args.shifts)
        except ValueError as err:
            raise CLIError(f"--shifts {args.shifts}: {err}") from None
    wanted = list(model.stems) if not args.stems else [s.strip() for s in args.stems.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(model.stems))
    if unknown or not wanted:
        raise CLIError(f"--stems {args.stems!r}: {args.model}'s stems are {', '.join(model.stems)}.")
    knobs = parse_knobs(args.knob)
    sources = [source for source, _ in effect_jobs(args.inputs, args.out_dir)]
    run_device = device(args.device)
    set_threads(args.threads)
    out = Path(args.out_dir)
    failed = 0
    for source in sources:
        folder = out / source.stem
        targets = [folder / f"{label}{_output_name(source)[len(source.stem):]}" if stem in wanted else None
                   for stem, label in zip(model.stems, labels)]
        made = not folder.exists()
        try:
            info = audio_info(source)
            folder.mkdir(parents=True, exist_ok=True)
            with progress_bar(info.frames, args.quiet, source.name, scale=info.sample_rate) as update:
                report = neuraudio.process_files(model, [source], targets, knobs=knobs, bit_depth=args.bit_depth,
                                                 device=run_device, progress=update)
        except BaseException as err:
            if made and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # no empty folder left behind by a failed input
            if len(sources) == 1 or not isinstance(err, (AudioError, OSError)):
                raise
            report_error("separate", err)
            failed += 1
            continue
        _report_file(args, report, ", ".join(str(t) for t in targets if t is not None))
    if failed:
        report_error("separate", CLIError(f"{failed} of {len(sources)} files failed; the others were written."))
    return 1 if failed else 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("enhance", parents=[common], help="remove noise from speech files",
                       usage="neuraudio enhance MODEL IN OUT [options]\n"
                             "       neuraudio enhance MODEL IN... -o DIR [options]",
                       epilog="example:\n  neuraudio enhance denoise-mmse noisy.wav clean.wav --knob reduction_db=15",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a speech enhancement model (see `neuraudio models`)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="IN OUT; or, with -o, input files and folders")
    p.add_argument("-o", "--out-dir", metavar="DIR", help="write each input here under its own name")
    add_run_options(p)
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser("vocode", parents=[common], help="resynthesise audio, or synthesise it from mel frames",
                       epilog="examples:\n  neuraudio vocode griffin-lim speech.wav resynthesised.wav\n"
                              "  neuraudio vocode griffin-lim --mel features.npy out.wav   (log-mel (80, frames))",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a vocoder (see `neuraudio models`)")
    p.add_argument("input", nargs="?", help="audio to resynthesise (analysis -> resynthesis)")
    p.add_argument("output", help=".wav, .flac, .ogg or .mp3")
    p.add_argument("--mel", help="a .npy of log-mel frames (bands, frames) in the vocoder's settings, instead of IN")
    add_run_options(p, knobs=False)
    p.set_defaults(func=cmd_vocode)

    p = sub.add_parser("aec", parents=[common], help="cancel the loudspeaker's echo in a microphone recording",
                       epilog="example:\n  neuraudio aec aec-linear --mic mic.wav --ref loudspeaker.wav clean.wav",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="an echo canceller (see `neuraudio models`)")
    p.add_argument("output", help=".wav, .flac, .ogg or .mp3")
    p.add_argument("--mic", required=True, help="the microphone recording (near end + echo)")
    p.add_argument("--ref", required=True, help="what the loudspeaker played, from the same device (its loopback); "
                   "resampled to the model's rate, and at most 0.5 s longer or shorter than --mic")
    add_run_options(p)
    p.set_defaults(func=cmd_aec)

    p = sub.add_parser("stretch", parents=[common], help="change a file's tempo, not its pitch (phase vocoder)")
    p.add_argument("input")
    p.add_argument("output", help=".wav, .flac, .ogg or .mp3")
    p.add_argument("--rate", type=float, required=True, help="speed factor: 2 is twice as fast, 0.5 twice as long")
    p.add_argument("--bit-depth", choices=["16", "24", "32f"], default="24")
    add_threads_option(p)
    p.set_defaults(func=cmd_stretch)

    p = sub.add_parser("separate", parents=[common], help="split files into stems (one file per stem)",
                       epilog="example:\n  neuraudio separate hpss song.flac live.wav -o separated/   "
                              "(separated/song/harmonic.flac, separated/song/percussive.flac, ...)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a separator (see `neuraudio models`)")
    p.add_argument("inputs", nargs="+", metavar="IN", help="input files and folders (searched recursively)")
    p.add_argument("-o", "--out-dir", required=True, metavar="DIR", help="writes DIR/<input name>/<stem>.<ext>")
    p.add_argument("--stems", help="comma-separated stems to write (default: all)")
    p.add_argument("--query", metavar="CLIP", help="for query-bound separators: an example of the sound to extract")
    p.add_argument("--shifts", type=int, metavar="N",
                   help="offline windowed models: average N passes at time offsets spread over 0.5 s (N times the "
                        "work; usually a little better)")
    p.add_argument("--name", help="with --query: the output's file name (default: the query clip's, e.g. guitar for "
                                  "--query guitar.wav: DIR/<input name>/guitar.<ext>)")
    add_run_options(p)
    p.set_defaults(func=cmd_separate)
