"""Regenerate the golden outputs of the shipped models (run after retraining, and commit the result):

    python tests/golden/make_golden.py
"""

from pathlib import Path

from safetensors.torch import save_file

import neuraudio
from neuraudio import hub
from neuraudio.examples import noisy_melody

HERE = Path(__file__).resolve().parent


def golden_input(model):
    """0.5 s of the generated example at the model's rate, at a guitar-like level."""
    return noisy_melody(0.5, model.sample_rate, noise_dbfs=-60.0) * 1.5


def main() -> None:
    for name in hub.shipped():
        model = neuraudio.load(name)
        x = golden_input(model)
        tensors = {"input": x.contiguous()}
        for i, knobs in enumerate(knob_settings(model)):
            tensors[f"output_{i}"] = model.process(x, **knobs).detach().contiguous()
        save_file(tensors, str(HERE / f"{name}.safetensors"))
        print(f"wrote {HERE / (name + '.safetensors')}")


def knob_settings(model):
    """Minimum, default and maximum of every knob together."""
    return [{k: getattr(spec, which) for k, spec in model.knobs.items()} for which in ("minimum", "default", "maximum")]


if __name__ == "__main__":
    main()
