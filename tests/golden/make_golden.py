"""Regenerate the golden outputs of the shipped models (run after retraining, and commit the result):

    python tests/golden/make_golden.py
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

import neuraudio
from neuraudio import hub
from neuraudio.examples import noisy_melody

HERE = Path(__file__).resolve().parent


def golden_input(model):
    """0.5 s of the generated example at the model's rate, at a guitar-like level."""
    return noisy_melody(0.5, model.sample_rate, noise_dbfs=-60.0) * 1.5


def golden_inputs(model) -> list:
    """The inputs of a golden run, in ``model.inputs``' order: :func:`golden_input` for one input; for an echo
    canceller (mic, ref), the reference is another melody and the microphone hears it 5 ms later at half its level
    over the golden input (double talk); for a separator (stereo music), a second melody on the right channel."""
    x = golden_input(model)
    if model.stems and next(iter(model.input_channels().values())) != 1:
        return [torch.cat([x, noisy_melody(0.5, model.sample_rate, noise_dbfs=-60.0, seed=2) * 1.5])]
    if list(model.inputs) != ["mic", "ref"]:
        return [x]
    ref = noisy_melody(0.5, model.sample_rate, noise_dbfs=-60.0, seed=1)
    lag = model.sample_rate // 200
    echo = 0.5 * torch.nn.functional.pad(ref, (lag, 0))[:, : ref.shape[-1]]
    return [0.5 * x + echo, ref]


def golden_model(name: str):
    """The shipped model ``name``, loaded; a query-bound one bound to :func:`golden_query` (an unbound one refuses to
    run)."""
    model = neuraudio.load(name)
    return model.with_query(golden_query(model)) if model.takes_query else model


def golden_query(model):
    """A query-bound model's golden query: 0.5 s of another generated melody, stereo."""
    return noisy_melody(0.5, model.sample_rate, noise_dbfs=-60.0, seed=3).expand(2, -1) * 1.5


def main(names=None) -> None:
    """Every shipped model's golden file, or those of ``names`` (a retrained model: the others stay as they are;
    regenerating all rewrites some in their last bits on another machine)."""
    for name in names or hub.shipped():
        model = golden_model(name)
        xs = golden_inputs(model)
        tensors = {"input": xs[0].contiguous(), **{f"input_{j}": x.contiguous() for j, x in enumerate(xs[1:], 1)}}
        for i, knobs in enumerate(knob_settings(model)):
            tensors[f"output_{i}"] = model.process(*xs, **knobs).detach().contiguous()
        save_file(tensors, str(HERE / f"{name}.safetensors"))
        print(f"wrote {HERE / (name + '.safetensors')}")


def knob_settings(model):
    """Minimum, default and maximum of every knob together."""
    return [{k: getattr(spec, which) for k, spec in model.knobs.items()} for which in ("minimum", "default", "maximum")]


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
