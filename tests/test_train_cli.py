"""End to end through the real `neuraudio train / export / eval` commands on generated data."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")

import neuraudio  # noqa: E402
from neuraudio.train.export import load_checkpoint  # noqa: E402

SR = 8000
RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "effects" / "linear.yaml"
TARGET_FIR = torch.tensor([0.5, 0.3, -0.2, 0.1, 0.05, -0.02])


def neuraudio_cli(*args, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "neuraudio", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    return proc


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """A 30 s 'capture' of a linear gear (a short FIR) in the effects layout."""
    root = tmp_path_factory.mktemp("capture")
    x = 0.3 * torch.randn(1, 30 * SR, generator=torch.Generator().manual_seed(1))
    y = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (5, 0))[None], TARGET_FIR.flip(0).view(1, 1, -1))[0]
    (root / "take").mkdir()
    neuraudio.write_audio(root / "input.wav", x, SR, bit_depth="32f")
    neuraudio.write_audio(root / "take" / "output.wav", y, SR, bit_depth="32f")
    return root


def train_args(data, run, epochs, *extra):
    return ["train", RECIPE, "--data.root", data, "--data.sample_rate", SR,
            "--model.model.init_args.sample_rate", SR, "--model.model.init_args.receptive_field", 16,
            "--data.crops_per_epoch", 128, "--data.batch_size", 16, "--optimizer.init_args.lr", 0.05,
            "--trainer.max_epochs", epochs, "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", run, *extra]


def val_losses(run):
    rows = []
    for path in sorted((Path(run) / "logs").glob("version_*/metrics.csv")):
        rows += [r for r in csv.DictReader(open(path)) if r.get("val_loss")]
    return [(int(r["step"]), float(r["val_loss"])) for r in rows]


def untrained_val_loss(data):
    from neuraudio.effects.linear import LinearEffect
    from neuraudio.train.datamodules import EffectsDataModule
    from neuraudio.train.module import EffectModule

    dm = EffectsDataModule(str(data), SR, warmup_seconds=0.02)
    dm.setup()
    module = EffectModule(LinearEffect(SR, 16))
    with torch.no_grad():
        return sum(float(module._common_step(b, "val")["loss"]) for b in dm.val_dataloader()) / len(dm.val_set)


def test_train_resume_export_eval(capture, tmp_path):
    run = tmp_path / "run"
    first = neuraudio_cli(*train_args(capture, run, 2))
    assert first.returncode == 0, first.stderr[-2000:]
    for noise in ("LightningCLI's args", "litlogger", "LeafSpec"):  # printed on every run before
        assert noise not in first.stderr
    steps_first = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert steps_first == 2 * 8

    again = neuraudio_cli(*train_args(capture, run, 5))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from" in again.stderr
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 5 * 8
    done = neuraudio_cli(*train_args(capture, run, 5))  # the same command again: it exited silently after 6.7 s
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"the run in {run} is complete (step 40, epoch 5; limits max_epochs 5); nothing was trained" in done.stderr
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 5 * 8
    losses = val_losses(run)
    assert [s for s, _ in losses] == sorted(s for s, _ in losses) and losses[2][0] > steps_first  # continued
    start = untrained_val_loss(capture)
    assert start / losses[-1][1] >= 10.0, (start, losses)

    out = tmp_path / "exported"
    exported = neuraudio_cli("export", run, out)
    assert exported.returncode == 0, exported.stderr
    config = json.loads((out / "config.json").read_text())
    assert "--data.root" in config["training"]["command"] and config["metrics"]["val_loss"] == pytest.approx(
        min(v for _, v in losses), rel=1e-5)
    from_checkpoint, _ = load_checkpoint(run / "checkpoints" / "best.ckpt")
    x = torch.randn(1, 4000)
    assert torch.equal(neuraudio.load(out).process(x), from_checkpoint.process(x))

    evaluated = neuraudio_cli("eval", "effect", "--model", out, "--data", capture, "--json", "-q")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert report["mean"]["esr"] < 0.05 and set(report["items"]) == {"take"}


def test_ddp_on_two_cpu_processes(capture, tmp_path):
    run = tmp_path / "ddp"
    proc = neuraudio_cli(*train_args(capture, run, 3, "--trainer.strategy", "ddp", "--trainer.devices", 2,
                                     "--trainer.accelerator", "cpu"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3 * 4  # each of the 2 ranks takes half of the 8 batches per epoch
    losses = val_losses(run)
    assert losses[-1][1] < losses[0][1] / 3


def test_export_and_train_errors(tmp_path, capture):
    proc = neuraudio_cli("export", tmp_path / "nothing", tmp_path / "out")
    assert proc.returncode == 1 and "not a training run" in proc.stderr and not (tmp_path / "out").exists()
    proc = neuraudio_cli("train", tmp_path / "missing.yaml")
    assert proc.returncode == 1 and "recipe file not found" in proc.stderr
    bad = tmp_path / "bad_capture"
    bad.mkdir()
    proc = neuraudio_cli(*train_args(bad, tmp_path / "r", 1))
    assert proc.returncode == 1 and "no input" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("option,sentence", [
    ("--data.rot", "--data.rot is not an option of EffectsDataModule; did you mean --data.root?"),
    ("--trainer.max_epocs", "--trainer.max_epocs is not an option of Trainer; did you mean --trainer.max_epochs?"),
    ("--model.model.init_args.recptive_field",
     "--model.model.init_args.recptive_field is not an option of LinearEffect; did you mean "
     "--model.model.init_args.receptive_field?"),
])
def test_a_mistyped_option_is_one_sentence_naming_the_nearest(option, sentence, capture, tmp_path, capsys):
    """A typo printed a 56-line usage dump."""
    from neuraudio.cli import main

    assert main(["train", str(RECIPE), option, "1", "--trainer.default_root_dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neuraudio train: error: {sentence}"]
    assert not (tmp_path / "r").exists()


def test_knob_capture_recipe_learns_its_knobs_from_the_data(tmp_path):
    """The README's knob-capture command works as written: no knob is spelled out."""
    root = tmp_path / "capture"
    root.mkdir()
    x = 0.3 * torch.randn(1, 12 * 48000, generator=torch.Generator().manual_seed(2))
    neuraudio.write_audio(root / "input.wav", x, 48000, bit_depth="32f")
    for gain in (0.0, 0.25, 1.0):
        (root / f"g{gain}").mkdir()
        neuraudio.write_audio(root / f"g{gain}" / "output.wav", torch.tanh((1 + 4 * gain) * x), 48000, bit_depth="32f")
        (root / f"g{gain}" / "knobs.json").write_text(json.dumps({"gain": gain}))
    recipe = RECIPE.parent / "lstm_knobs.yaml"
    proc = neuraudio_cli("train", recipe, "--data.root", root, "--trainer.default_root_dir", tmp_path / "run",
                         "--trainer.max_epochs", 1, "--data.crops_per_epoch", 64, "--trainer.enable_progress_bar",
                         "false")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert neuraudio_cli("export", tmp_path / "run", tmp_path / "model", "--summary", "my drive pedal").returncode == 0
    model = neuraudio.load(tmp_path / "model")
    spec = model.knobs["gain"]
    assert list(model.knobs) == ["gain"] and (spec.minimum, spec.default, spec.maximum, spec.unit) == (0.0, 0.25, 1.0, "0..1")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["summary"] == "my drive pedal"
    y = model.process(x[:, :4800], gain=0.5)
    assert y.shape == (1, 4800) and torch.isfinite(y).all()
