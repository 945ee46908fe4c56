"""``neuraudio bench``: how fast a model runs offline and through the real-time :class:`Engine`.

Two figures, both on the same generated test signal (a plucked-string-like tone sequence with noise, at the
model's rate; mono unless ``channels`` is given):

* **offline real-time factor**: seconds of compute per second of audio for ``model.process`` on the whole signal
  (below 1 is faster than real time);
* **streaming**: the Engine's own ``process`` call per block (warm-up excluded), p50 / p99 / max in ms, against the
  budget ``block_size / sample_rate``, and the number of blocks over budget. The first knob, if any, jumps
  between its minimum and maximum every 50 blocks, so the knob glide is part of what is measured.
"""

from __future__ import annotations

import math
import resource
import time

import torch

from neuraudio.runtime.engine import Engine
from neuraudio.stream.processor import Processor


def bench_signal(sample_rate: int, seconds: float, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Decaying harmonic notes every 250 ms plus -50 dBFS noise, peak about 0.5: ``(channels, time)``."""
    gen = torch.Generator().manual_seed(seed)
    length = int(round(seconds * sample_rate))
    t = torch.arange(length, dtype=torch.float64) / sample_rate
    note = 0.25
    pitch = 110.0 * 2 ** (torch.randint(0, 24, (int(seconds / note) + 1,), generator=gen).double() / 12)
    f0 = pitch[(t / note).long()]
    local = torch.remainder(t, note)
    phase = 2 * math.pi * torch.cumsum(f0 / sample_rate, 0)
    tone = sum(torch.sin(k * phase) / k for k in range(1, 6)) * torch.exp(-local / 0.08)
    x = 0.5 * tone / tone.abs().max().clamp_min(1e-9)
    x = x + 10 ** (-50 / 20) * torch.randn(length, generator=gen, dtype=torch.float64)
    return x.float().expand(channels, -1).clone()


def paced_host_loop(engine: Engine, x, knob: str | None = None) -> int:
    """Feed ``x`` (numpy ``(channels, time)``) to ``engine`` in full blocks at real-time pace, as a host does: after
    each block the loop sleeps until that block's deadline. ``knob`` (a name) jumps between its maximum and minimum
    every 50 blocks. Returns how many blocks the host itself finished after their deadline (sleep jitter
    included); the engine's own figures are in ``engine.stats()``."""
    block, rate = engine.block_size, engine.sample_rate
    spec = engine.model.knobs[knob] if knob else None
    late = 0
    deadline = time.perf_counter()
    for i in range(x.shape[-1] // block):
        if spec is not None and i % 50 == 0:
            engine.set_knobs(**{knob: spec.maximum if (i // 50) % 2 == 0 else spec.minimum})
        engine.process(x[:, i * block : (i + 1) * block])
        deadline += block / rate
        wait = deadline - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            late += 1
    return late


def benchmark(model: Processor, *, device: str = "cpu", block_size: int = 128, seconds: float = 10.0,
              threads: int | None = 1, channels: int = 1, dtype: str = "float32", cuda_graph: bool = True,
              name: str | None = None, block_multiple: int | None = None) -> dict:
    """Measure ``model``; returns the dict that ``neuraudio bench --json`` prints (see the module docstring)."""
    if threads:
        torch.set_num_threads(threads)
    # one signal per model input: the bench signal, and for a second input (an echo canceller's reference) the
    # same signal 20 ms earlier, so the model has an echo to work on
    shapes = [channels if want is None else want for want in model.input_channels().values()]
    x = bench_signal(model.sample_rate, seconds, shapes[0])
    signals = [x] + [torch.roll(bench_signal(model.sample_rate, seconds, ch), -model.sample_rate // 50, -1)
                     for ch in shapes[1:]]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    engine = Engine(model, model.sample_rate, block_size, shapes[0], device=device, dtype=dtype,
                    cuda_graph=cuda_graph, threads=threads, block_multiple=block_multiple).prepare()

    offline_model = engine.model  # already on the device, in the dtype
    with torch.inference_mode():
        xd = [s.to(engine.device, engine.dtype) for s in signals]
        offline_model.process(*(s[..., : min(x.shape[-1], model.sample_rate // 10)] for s in xd))  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        offline_model.process(*xd)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        offline_seconds = time.perf_counter() - start

    blocks = [s.numpy() for s in signals]
    knob = next(iter(model.knobs), None)
    count = x.shape[-1] // block_size
    for i in range(count):
        if knob and i % 50 == 0:
            spec = model.knobs[knob]
            engine.set_knobs(**{knob: spec.maximum if (i // 50) % 2 == 0 else spec.minimum})
        engine.process(*(b[:, i * block_size : (i + 1) * block_size] for b in blocks))
    stats = engine.stats()
    memory = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        memory["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return {
        "model": name or type(model).__name__,
        "device": str(engine.device),
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "sample_rate": model.sample_rate,
        "channels": channels,
        "block_size": block_size,
        "block_multiple": block_multiple,
        "path": engine.path,
        "latency_samples": engine.latency,
        "budget_ms": stats.budget_ms,
        "block_ms": {"p50": stats.p50_ms, "p99": stats.p99_ms, "max": stats.max_ms},
        "blocks": stats.blocks,
        "overruns": stats.overruns,
        "offline_rtf": offline_seconds / seconds,
        "cuda_graph": engine.graph is not None,
        "precision_esr": engine.precision_esr,      # None in float32
        "precision_speed": engine.precision_speed,  # offline time of dtype over float32's
        "fallback_reason": engine.fallback_reason,
        "memory": memory,
        "seconds": seconds,
    }


def format_report(r: dict) -> str:
    """Human-readable lines for one :func:`benchmark` result."""
    b = r["block_ms"]
    lines = [
        f"{r['model']} on {r['device']} ({r['dtype']}, {r['threads']} thread(s)), {r['sample_rate']} Hz, "
        f"{r['channels']} ch, blocks of {r['block_size']} samples"
        + (f" (whole multiples of {r['block_multiple']})" if r.get("block_multiple") else "")
        + f", latency {r['latency_samples']} samples, {r.get('path', 'direct')} path",
        f"  offline: real-time factor {r['offline_rtf']:.4f} over {r['seconds']:g} s of audio "
        f"({1 / max(r['offline_rtf'], 1e-12):.0f}x faster than real time)",
        f"  streaming through the Engine: budget {r['budget_ms']:.3f} ms per block; p50 {b['p50']:.3f} ms, "
        f"p99 {b['p99']:.3f} ms ({100 * b['p99'] / r['budget_ms']:.1f}% of budget), max {b['max']:.3f} ms; "
        f"{r['overruns']} of {r['blocks']} blocks over budget",
        f"  memory: peak RSS {r['memory']['peak_rss_mb']:.0f} MB"
        + (f", CUDA peak {r['memory']['cuda_peak_allocated_mb']:.1f} MB" if "cuda_peak_allocated_mb" in r["memory"]
           else ""),
    ]
    if r.get("precision_esr") is not None:
        lines.append(f"  precision check: ESR {r['precision_esr']:.2e} against float32; offline "
                     f"{r['precision_speed']:.2f}x the float32 time")
    if r["device"].startswith("cuda"):
        lines.append(f"  CUDA graph: {'captured' if r['cuda_graph'] else 'no'}"
                     + (f" ({r['fallback_reason']})" if r["fallback_reason"] else ""))
    return "\n".join(lines)
