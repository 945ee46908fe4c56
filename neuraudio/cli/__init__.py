"""The ``neuraudio`` command: a thin shell over the public API (one module per command group).

Every command follows the same conventions: errors are one sentence on stderr and exit status 1 (2 for a usage
error), a failed or terminated run (an error, Ctrl-C, SIGTERM) leaves no partial output file, progress bars appear
on a terminal for work longer than a second unless ``--quiet`` is given, and output piped into a command that stops
reading (``neuraudio models | head -3``) ends quietly.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Sequence

import neuraudio
from neuraudio.audio import AudioError
from neuraudio.cli import data, families, files, models
from neuraudio.cli.common import CLIError
from neuraudio.data.tools import ToolError
from neuraudio.datasets.common import DataError
from neuraudio.hub import ModelError
from neuraudio.runtime import EngineError

__all__ = ["CLIError", "build_parser", "main"]

USER_ERRORS = (AudioError, ModelError, CLIError, EngineError, ToolError, ValueError, FileNotFoundError, DataError)


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so open output files are removed on the way out."""


def _terminate(signum, frame) -> None:
    raise Terminated


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuraudio", description="Neural audio signal processing.",
        epilog="`neuraudio COMMAND --help` describes a command; `neuraudio models NAME` a model.")
    parser.add_argument("--version", action="version", version=f"neuraudio {neuraudio.__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bars or chatter")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    files.add_parsers(sub, common)
    families.add_parsers(sub, common)
    models.add_parsers(sub, common)
    data.add_parsers(sub, common)
    parser.command_parsers = sub.choices
    return parser


def _model_help(argv: list[str]) -> bool:
    """``neuraudio effect|enhance|aec MODEL --help``: the command's help, then the model's knobs (the model is the
    first argument after the command)."""
    if argv[:1] not in (["effect"], ["enhance"], ["aec"]) or not {"-h", "--help"} & set(argv):
        return False
    if len(argv) < 2 or argv[1].startswith("-"):
        return False
    names = argv[1:2]
    build_parser().command_parsers[argv[0]].print_help()
    try:
        print("\nthe model:\n" + "\n".join(models.model_lines(neuraudio.hub.describe(names[0]), detail=True)))
    except ModelError as err:
        print(f"\nthe model: {err}")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        # Everything after `train` belongs to LightningCLI (including --help), not to argparse.
        args = argparse.Namespace(command="train", recipe=argv[1] if len(argv) > 1 else "--help",
                                  overrides=argv[2:], func=models.cmd_train)
    elif _model_help(argv):
        return 0
    else:
        args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code = args.func(args) or 0
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at interpreter exit
        return code
    except USER_ERRORS as err:
        files.report_error(args.command, err)
        return 1
    except KeyboardInterrupt:
        print(f"neuraudio {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"neuraudio {args.command}: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; point stdout at /dev/null so the interpreter's final flush
        # does not raise again (the recipe of Python's signal documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
