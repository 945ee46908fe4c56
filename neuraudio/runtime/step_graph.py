"""Capturing one model step as a CUDA graph, and checking it against eager steps (the Engine's direct path).

A graph replays the reads and writes of the addresses it captured, so a step may keep any state (a list of tensors,
or objects holding tensors, such as an STFT model's frame buffers) as long as it updates the state's tensors in
place. :func:`replay_mismatch` runs a few blocks of a test signal through replays and through eager steps on a fresh
state: a step that replaces its state tensors (and would freeze its state under a graph) is caught there.
:func:`restore_into` returns any such state to rest in place, so the graph stays valid across ``reset``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

# Replays may differ from eager steps by at most this (float32 kernels in another order).
TOLERANCE = 1e-4


def restore_into(live: Any, fresh: Any) -> Any:
    """Copy the state ``fresh`` into ``live`` in place, tensor by tensor (lists, tuples, dicts and objects holding
    tensors or plain values), and return ``live``; a part that cannot be updated in place is replaced."""
    if torch.is_tensor(live) and torch.is_tensor(fresh) and live.shape == fresh.shape and live.dtype == fresh.dtype:
        live.copy_(fresh)
        return live
    if isinstance(live, list) and isinstance(fresh, list) and len(live) == len(fresh):
        for i, (a, b) in enumerate(zip(live, fresh)):
            live[i] = restore_into(a, b)
        return live
    if isinstance(live, dict) and isinstance(fresh, dict) and live.keys() == fresh.keys():
        for key in live:
            live[key] = restore_into(live[key], fresh[key])
        return live
    if type(live) is type(fresh) and hasattr(live, "__dict__") and not isinstance(live, (torch.Tensor, tuple)):
        for key, value in vars(fresh).items():
            setattr(live, key, restore_into(getattr(live, key, None), value))
        return live
    return fresh


def capture_step(step: Callable[[], torch.Tensor], device: torch.device,
                 restore: Callable[[], None]) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """Warm ``step`` up on a side stream (as ``torch.cuda.graphs`` asks), ``restore`` the state, and capture one
    call; returns the graph and the output tensor its replays write. Raises what capture raises."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side), torch.inference_mode():
        for _ in range(3):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    restore()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        y = step()
    return graph, y


@torch.inference_mode()
def replay_mismatch(graph: torch.cuda.CUDAGraph, y: torch.Tensor, inputs: list[torch.Tensor],
                    eager_step: Callable[[], torch.Tensor], blocks: int = 6) -> str | None:
    """Fill ``inputs`` with ``blocks`` blocks of a test signal, replaying ``graph`` (its output ``y``) and calling
    ``eager_step`` (the same step on a fresh state of its own) on each; ``None`` when they agree, else the reason.
    The inputs are zeroed afterwards."""
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for _ in range(blocks):
        for x in inputs:
            x.copy_(0.1 * torch.randn(x.shape, generator=gen))
        graph.replay()
        replayed = y.clone()
        worst = max(worst, float((replayed - eager_step()).abs().max()))
    for x in inputs:
        x.zero_()
    if not worst <= TOLERANCE:
        return (f"the captured graph differs from eager steps by {worst:.2g} (the model's step replaces its state "
                "tensors instead of updating them in place)")
    return None
