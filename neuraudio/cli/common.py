"""What every command shares: the error type, the progress bar, device and thread choices, knob parsing."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence


class CLIError(Exception):
    """A user-facing failure of a command (one sentence)."""


@contextmanager
def progress_bar(total: float, quiet: bool, desc: str, unit: str = "s",
                 scale: float = 1.0) -> Iterator[Callable[[float], None]]:
    """A tqdm bar updated with absolute counts (``update(done)``), shown after one second and only on a terminal,
    closed (and erased) on the way out, so no bar line ever precedes an error sentence in a log.

    ``scale`` divides the counts (samples -> seconds).
    """
    if quiet:
        yield lambda done: None
        return
    from tqdm import tqdm

    bar = tqdm(total=round(total / scale, 2), desc=desc, unit=unit, delay=1.0, leave=False, file=sys.stderr,
               disable=None, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} {unit} [{elapsed}<{remaining}]")

    def update(done: float) -> None:
        bar.update(round(done / scale, 2) - bar.n)

    try:
        yield update
    finally:
        bar.close()


def device(name: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is there, else ``cpu``; ``cuda`` without a GPU is one sentence."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda was asked for but no CUDA GPU is available.")
    return name


def default_threads() -> int:
    """Half the cores this process may use, 1 to 4: a command shares the machine, and torch's default of every core
    stalls when one is busy (benchmarks/effect_threads.py: a 10 s file through klon-centaur on 2 cores, one busy,
    took 11.5 s with 2 threads and 0.39 s with 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores // 2))


def set_threads(threads: int | None) -> int:
    """Set torch's CPU thread count (``None``: :func:`default_threads`); returns it."""
    import torch

    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise CLIError(f"--threads must be at least 1, got {threads}.")
    torch.set_num_threads(threads)
    return threads


def parse_knobs(pairs: Sequence[str]) -> dict[str, float]:
    """``["gain=0.6", ...]`` -> ``{"gain": 0.6}``."""
    knobs = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            knobs[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise CLIError(f"--knob expects NAME=NUMBER, got {pair!r}.")
    return knobs


def add_threads_option(parser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: half the cores, 1 to 4)")
