"""The streaming-equals-offline harness every model's tests call.

``assert_stream_matches_offline(model, *inputs)`` feeds the inputs (one ``(channels, time)`` tensor per
``model.inputs``) to ``model.stream`` in each block pattern of docs/architecture.md (1, hop - 1, hop, 3 * hop + 7 and
random lengths ``0..block_size``; with ``block_multiple``, each rounded to a multiple of it), optionally changing
knobs mid-stream, and checks ``concat(outputs)[..., latency:] == model.process(*inputs, **trajectories)[..., : T -
latency]`` within ``atol`` (stems included), where the offline knob trajectories are rebuilt with
:func:`knob_trajectory` from the sample indices at which the stream got each change.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from neuraudio.stream.processor import Processor, knob_trajectory

PATTERNS = ("1", "hop-1", "hop", "3hop+7", "random")


def block_lengths(pattern: str, hop: int, block_size: int, total: int, seed: int = 0,
                  multiple: int = 1) -> list[int]:
    """Block lengths summing to ``total`` for a named pattern (``random``: uniform in ``0..block_size``); with
    ``multiple``, every length is a multiple of it (``total`` must be one too)."""
    if total % multiple:
        raise ValueError(f"total {total} is not a multiple of {multiple}.")
    fixed = {"1": 1, "hop-1": max(1, hop - 1), "hop": hop, "3hop+7": 3 * hop + 7}
    if pattern in fixed:
        n = max(multiple, min(fixed[pattern], block_size) // multiple * multiple)
        return [n] * (total // n) + ([total % n] if total % n else [])
    if pattern != "random":
        raise ValueError(f"unknown block pattern {pattern!r}; use one of {', '.join(PATTERNS)}.")
    gen = torch.Generator().manual_seed(seed)
    lengths, left = [], total
    while left > 0:
        n = min(left, int(torch.randint(0, block_size // multiple + 1, (1,), generator=gen)) * multiple)
        lengths.append(n)
        left -= n
    return lengths


def run_stream(model: Processor, x: torch.Tensor | Sequence[torch.Tensor], lengths: Sequence[int], block_size: int,
               knobs: Mapping[str, float] | None = None,
               changes: Sequence[tuple[int, Mapping[str, float]]] = (), device="cpu", runner=None,
               block_multiple: int | None = None):
    """Stream ``x`` (``(channels, time)``, or a sequence of them: one per model input) in blocks of ``lengths``;
    apply each ``(index, knobs)`` change before the first block starting at or after ``index``. ``runner``
    (default: a new ``model.stream``) is anything with ``set_knobs`` and ``process``, e.g. a prepared
    :class:`neuraudio.runtime.Engine`.

    Returns ``(output, applied)``: the concatenated output and the ``(sample_index, knobs)`` changes as applied.
    """
    inputs = [x] if torch.is_tensor(x) else list(x)
    stream = runner or model.stream(block_size=block_size, device=device, channels=inputs[0].shape[-2],
                                    block_multiple=block_multiple)
    stream.set_knobs(**dict(knobs or {}))
    outputs, applied, pending, position = [], [], list(changes), 0
    for n in lengths:
        while pending and pending[0][0] <= position:
            stream.set_knobs(**pending[0][1])
            applied.append((position, dict(pending.pop(0)[1])))
        blocks = [i[:, position : position + n].to(device) for i in inputs]
        outputs.append(torch.as_tensor(stream.process(*blocks)).clone())
        if outputs[-1].shape[-1] != n:
            raise AssertionError(f"stream returned {outputs[-1].shape[-1]} samples for a block of {n}.")
        position += n
    return torch.cat(outputs, dim=-1).cpu(), applied


def offline_knobs(model: Processor, length: int, knobs: Mapping[str, float] | None,
                  applied: Sequence[tuple[int, Mapping[str, float]]]) -> dict[str, torch.Tensor]:
    """Per-sample knob tensors equal to what a stream applied for the given changes."""
    start = {**model.knob_defaults(), **dict(knobs or {})}
    out = {}
    for name in model.knobs:
        events = [(index, values[name]) for index, values in applied if name in values]
        out[name] = knob_trajectory(start[name], events, length, model.knob_time_constant_ms, model.sample_rate)
    return out


def assert_stream_matches_offline(model: Processor, x: torch.Tensor, *more: torch.Tensor,
                                  patterns: Sequence[str] = PATTERNS,
                                  block_size: int | None = None, knobs: Mapping[str, float] | None = None,
                                  changes: Sequence[tuple[int, Mapping[str, float]]] = (), atol: float = 1e-5,
                                  seed: int = 0, device="cpu", block_multiple: int | None = None,
                                  make_runner: Callable[[int, int], object] | None = None) -> dict[str, float]:
    """Check the streaming invariant for each block pattern; returns the max abs error per pattern.

    Args:
        x, *more: ``(channels, time)`` test signals at ``model.sample_rate``, one per model input, in order.
        block_size: the stream's maximum block (default ``3 * hop + 7``, so every fixed pattern fits).
        knobs: initial knob values; changes: ``(sample_index, {knob: value})`` applied mid-stream.
        block_multiple: stream with this promise (every block a multiple of it); the signals are cut to a multiple.
        make_runner: ``(block_size, channels) -> runner`` with ``set_knobs``, ``process`` and ``latency`` (default
            ``model.stream``), so the same harness checks the real-time engine.
    """
    inputs = [x, *more]
    if block_multiple:
        inputs = [i[..., : i.shape[-1] // block_multiple * block_multiple] for i in inputs]
    total, channels = inputs[0].shape[-1], inputs[0].shape[-2]
    block_size = block_size or 3 * model.hop + 7
    if block_multiple:
        block_size = max(block_multiple, block_size // block_multiple * block_multiple)
    errors = {}
    with torch.no_grad():
        for pattern in patterns:
            lengths = block_lengths(pattern, model.hop, block_size, total, seed, block_multiple or 1)
            runner = make_runner(block_size, channels) if make_runner else None
            y, applied = run_stream(model, inputs, lengths, block_size, knobs, changes, device, runner, block_multiple)
            lat = (runner or model.stream(block_size=block_size, channels=channels,
                                          block_multiple=block_multiple)).latency
            reference = model.process(*(i.to(device) for i in inputs),
                                      **offline_knobs(model, total, knobs, applied)).cpu()
            n = total - lat
            errors[pattern] = float((y[..., lat:] - reference[..., :n]).abs().max()) if n > 0 else 0.0
    bad = {p: e for p, e in errors.items() if not e <= atol}
    if bad:
        raise AssertionError(f"{type(model).__name__}: stream differs from offline beyond {atol}: {bad}")
    return errors
