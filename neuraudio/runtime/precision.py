"""How far a lower precision moves a model's output from float32, for the engine's check in ``prepare``."""

from __future__ import annotations

import time

import torch

from neuraudio.stream.processor import Processor


def compact_rnn_weights(model: torch.nn.Module) -> torch.nn.Module:
    """After a move to another device or dtype, put each RNN's weights back in one block: cuDNN otherwise copies
    them at every call (and warns that it does). Returns ``model``."""
    for module in model.modules():
        if isinstance(module, torch.nn.RNNBase):
            module.flatten_parameters()
    return model


def measure_precision(model: Processor, dtype: torch.dtype, channels: int = 1,
                      device: str | torch.device = "cpu") -> tuple[float, float]:
    """``(esr, speed)``: the error of ``model`` run in ``dtype`` against float32, and its offline time over
    float32's. ``model`` is float32 on ``device`` and is left so.

    The test signal is :func:`neuraudio.examples.exercise_signal` (notes over a 45 dB range, transients, digital
    silence, noise, a sweep), run with the knobs at their defaults, all at their minimum and all at their maximum;
    the error is the worst of the plain and the pre-emphasised ESR over those runs. A sine with light noise let
    klon-centaur through in bfloat16 at ESR 5.7e-5, while guitar DI reached a pre-emphasised 2.2e-3 (figures of the
    field report, issue [1/6]).

    Raises ``RuntimeError``/``ValueError`` where the model cannot run in ``dtype`` on ``device``.
    """
    from neuraudio.examples import exercise_signal
    from neuraudio.metrics import esr

    x = exercise_signal(3.0, model.sample_rate).expand(channels, -1).to(device)
    settings = [model.knob_defaults()]
    for end in ("minimum", "maximum"):
        values = {name: getattr(spec, end) for name, spec in model.knobs.items()}
        if values not in settings:
            settings.append(values)
    worst, seconds = 0.0, {"float32": 0.0, "low": 0.0}
    with torch.inference_mode():
        for knobs in settings:
            started = time.perf_counter()
            reference = model.process(x, **knobs).float()
            seconds["float32"] += time.perf_counter() - started
            compact_rnn_weights(model.to(dtype))
            try:
                started = time.perf_counter()
                estimate = model.process(x.to(dtype), **knobs).float()
                seconds["low"] += time.perf_counter() - started
            finally:
                compact_rnn_weights(model.to(torch.float32))
            worst = max(worst, float(esr(estimate, reference, pre_emphasis_coefficient=None)),
                        float(esr(estimate, reference)))
    return worst, seconds["low"] / max(seconds["float32"], 1e-9)
