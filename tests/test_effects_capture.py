import json
import subprocess
import sys

import pytest
import torch

import neuraudio
from neuraudio.effects.capture import align, capture_signal, find_delay
from neuraudio.effects.dsp import Overdrive

SR = 16000


@pytest.fixture(scope="module")
def signal():
    return capture_signal(SR, 1.0, seed=3)


def test_capture_signal_is_deterministic_and_in_range(signal):
    x, layout = signal
    again, _ = capture_signal(SR, 1.0, seed=3)
    assert torch.equal(x, again) and abs(x.shape[-1] - 60 * SR) <= 2
    assert float(x.abs().max()) <= 1.0
    (a0, a1), (b0, b1) = layout.validation
    assert a1 == b0 and torch.equal(x[:, a0:a1], x[:, b0:b1])  # the validation segment, played twice
    assert all(float(x[0, b]) == 0.5 for b in layout.blips)


@pytest.mark.parametrize("delay,inverted,use_layout", [(0, False, True), (1, True, True), (777, False, False),
                                                       (2345, True, False)])
def test_align_recovers_delay_to_the_sample_and_polarity(signal, delay, inverted, use_layout):
    x, layout = signal
    y = Overdrive(SR).process(x, drive_db=24.0)
    recording = torch.nn.functional.pad(y, (delay, 0))[:, : x.shape[-1]] * (-1 if inverted else 1)
    aligned, report = align(x, recording, SR, layout if use_layout else None)
    assert report.delay == delay and report.inverted == inverted
    assert (aligned[:, : x.shape[-1] - delay] - y[:, : x.shape[-1] - delay]).abs().max() == 0
    if use_layout:
        assert report.replicate_esr == pytest.approx(0.0, abs=1e-9)


def test_replicate_esr_flags_a_noisy_or_changing_capture(signal):
    x, layout = signal
    y = Overdrive(SR).process(x, drive_db=24.0)
    (b0, b1) = layout.validation[1]
    y[:, b0:b1] = Overdrive(SR).process(x[:, b0:b1], drive_db=30.0)  # the knob moved during the capture
    _, report = align(x, y, SR, layout)
    assert report.replicate_esr > 0.01 and "WARNING" in report.lines()[-1]


def test_find_delay_on_noise():
    x = torch.randn(5000)
    lag, inverted = find_delay(x, torch.cat([torch.zeros(123), -x])[:5000], 400)
    assert (lag, inverted) == (123, True)


def test_capture_and_align_commands(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "neuraudio", *map(str, args)], capture_output=True, text=True)

    out = cli("capture-signal", tmp_path / "cap.wav", "--sample-rate", SR, "--minutes", 1, "-q")
    assert out.returncode == 0, out.stderr
    layout = json.loads((tmp_path / "cap.json").read_text())
    assert layout["sample_rate"] == SR
    x, _ = neuraudio.read_audio(tmp_path / "cap.wav")
    neuraudio.write_audio(tmp_path / "rec.wav", torch.nn.functional.pad(-x, (50, 0))[:, : x.shape[-1]], SR,
                          bit_depth="32f")
    # the README's capture flow: the take folder does not exist yet (the run stopped after the analysis)
    target = tmp_path / "my_gear" / "take1" / "output.wav"
    out = cli("align", tmp_path / "cap.wav", tmp_path / "rec.wav", "--out", target)
    assert out.returncode == 0, out.stderr
    assert "delay: 50 samples" in out.stdout and "inverted" in out.stdout
    aligned, _ = neuraudio.read_audio(target)
    assert (aligned[:, :-50] - x[:, :-50]).abs().max() <= 2**-23
    bad = cli("align", tmp_path / "cap.wav", tmp_path / "missing.wav")
    assert bad.returncode == 1 and "no such file" in bad.stderr


def test_align_checks_its_output_before_the_analysis(tmp_path, monkeypatch, capsys):
    from neuraudio.cli import main
    from neuraudio.effects import capture

    def never(*args, **kwargs):
        raise AssertionError("the analysis ran before the output was checked")

    monkeypatch.setattr(capture, "align", never)
    x = torch.zeros(1, 100)
    neuraudio.write_audio(tmp_path / "a.wav", x, SR)
    assert main(["align", str(tmp_path / "a.wav"), str(tmp_path / "a.wav"), "--out", str(tmp_path / "o.aiff")]) == 1
    assert "can only write .wav, .flac, .ogg, .mp3 files" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["align", str(tmp_path / "a.wav"), str(tmp_path / "a.wav"), "--out", str(tmp_path / "file" / "o.wav")]) == 1
    assert "cannot create or write in" in capsys.readouterr().err
