"""Commands on models: ``models``, ``export``, ``eval``, ``bench``, ``train``."""

from __future__ import annotations

import json
import sys

import neuraudio
from neuraudio.cli.common import CLIError, add_threads_option, device, set_threads
from neuraudio.hub import describe, list_models


def _knob_lines(knobs: dict) -> list[str]:
    from neuraudio.stream.processor import Knob

    lines = []
    for name, values in knobs.items():
        spec = Knob(**values)
        doc = f": {spec.doc}" if spec.doc else ""
        lines.append(f"    {name:14s} {spec.range_text} (default {spec.default:g}){doc}")
    return lines


def model_lines(row: dict, detail: bool = False) -> list[str]:
    lines = [f"{row['name']}  [{row['task']}]  {row['sample_rate']} Hz, latency {row['latency']} samples "
             f"({row['stream_latency']} streaming at any block size)"]
    if row["summary"]:
        lines.append(f"    {row['summary']}")
    if row["knobs"]:
        lines += (["  knobs (--knob NAME=VALUE):"] if detail else []) + _knob_lines(row["knobs"])
    elif detail:
        lines.append("  no knobs")
    if detail:
        inputs = ", ".join(f"{name} ({'any channels, each alone' if ch is None else f'{ch} ch'})"
                           for name, ch in row["inputs"].items())
        lines.append(f"  class {row['class']}, {row['parameters']:,} parameters; inputs: {inputs}")
        if row["stems"]:
            lines.append(f"  stems: {', '.join(row['stems'])}")
        if row.get("takes_query"):
            lines.append("  told what to extract by an example: --query CLIP (Python: model.with_query(clip))")
        if row.get("path"):
            lines.append(f"  folder {row['path']} (model card: README.md)")
        training = row.get("training") or {}
        if training.get("command"):
            lines.append(f"  trained with: {training['command']}")
        for key, value in (row.get("metrics") or {}).items():
            lines.append(f"  {key}: {json.dumps(value)}")
    return lines


def cmd_models(args) -> int:
    if args.name:
        row = describe(args.name)
        print(json.dumps(row) if args.json else "\n".join(model_lines(row, detail=True)))
        return 0
    rows = list_models()
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        print("\n".join(model_lines(row)))
    return 0


def cmd_export(args) -> int:
    from neuraudio.train.export import export_run

    folder = export_run(args.run_dir, args.out_dir, name=args.name, which=args.checkpoint, summary=args.summary or "")
    model = neuraudio.load(folder)
    if not args.quiet:
        print(f"wrote {folder}: {type(model).__name__}, {model.sample_rate} Hz, latency {model.latency} samples")
    return 0


def cmd_eval(args) -> int:
    from neuraudio.evaluate import evaluate

    set_threads(args.threads)
    model = neuraudio.load(args.model)
    report = evaluate(args.task, model, args.data, progress=None if args.quiet else
                      (lambda name: print(f"  {name}", file=sys.stderr)))
    if args.json:
        print(json.dumps({"model": str(args.model), "data": str(args.data), **report}))
        return 0
    keys = list(report["mean"])
    print(f"{'item':30s} " + " ".join(f"{k:>10s}" for k in keys))
    for name, row in report["items"].items():
        print(f"{name[:30]:30s} " + " ".join(f"{row.get(k, float('nan')):10.4f}" for k in keys))
    print(f"{'mean':30s} " + " ".join(f"{report['mean'][k]:10.4f}" for k in keys))
    return 0


def cmd_bench(args) -> int:
    from neuraudio.runtime.bench import benchmark, format_report

    if args.block_size < 1 or args.seconds <= 0 or (args.threads is not None and args.threads < 1):
        raise CLIError("--block-size and --threads must be at least 1 and --seconds positive.")
    model = neuraudio.load(args.model)
    result = benchmark(model, device=device(args.device), block_size=args.block_size, seconds=args.seconds,
                       threads=args.threads, channels=args.channels, dtype=args.dtype,
                       cuda_graph=not args.no_cuda_graph, name=args.model, block_multiple=args.block_multiple)
    if not args.json or not args.quiet:
        print(format_report(result))
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_train(args) -> int:
    try:
        from neuraudio.train.cli import run
    except ImportError as err:
        raise CLIError(f"training needs the train extra ({err.name} is missing): pip install 'neuraudio[train]'.") from None
    run([args.recipe, *args.overrides])
    return 0


def add_parsers(sub, common) -> None:
    p = sub.add_parser("models", parents=[common], help="list the available models, or describe one")
    p.add_argument("name", nargs="?", metavar="NAME_OR_FOLDER", help="one model: knobs, ranges, units, training, metrics")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model from a recipe (LightningCLI; needs the train extra)",
                       add_help=False)
    p.add_argument("recipe", help="recipe YAML (e.g. recipes/effects/lstm.yaml), or --help")
    p.add_argument("overrides", nargs="*", help="--section.key value ... (e.g. --data.root DIR)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", parents=[common], help="turn a training run into a model folder")
    p.add_argument("run_dir", help="the run's --trainer.default_root_dir")
    p.add_argument("out_dir", help="new folder for config.json + model.safetensors + README.md")
    p.add_argument("--name", help="model name (default: the folder's name)")
    p.add_argument("--summary", help="one line for `neuraudio models` (default: class, run and validation loss)")
    p.add_argument("--checkpoint", default="best", help="best (lowest validation loss), last, or a path")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("eval", parents=[common], help="metrics of a model over a folder in its task's layout")
    p.add_argument("task", choices=["effect", "enhancement", "vocoder", "separation", "echo"])
    p.add_argument("--model", required=True, help="model name or folder")
    p.add_argument("--data", required=True, help="folder in the task's layout")
    p.add_argument("--json", action="store_true", help="one JSON object: items and means")
    add_threads_option(p)
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
    p.add_argument("--block-multiple", type=int, default=None,
                   help="the host promises blocks of whole multiples of this (a multiple of the model's hop that "
                        "divides --block-size): lower latency, and a CUDA graph for models with a hop")
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object of the figures")
    p.set_defaults(func=cmd_bench)
