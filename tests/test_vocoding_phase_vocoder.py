import math

import pytest
import torch

from neuraudio.cli import main
from neuraudio.stream.testing import assert_stream_matches_offline
from neuraudio.vocoding import time_stretch
import neuraudio

SR = 16000


def harmonic(f0=220.0, seconds=2.0):
    t = torch.arange(int(seconds * SR)) / SR
    return (0.3 * sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 6)))[None]


def pitch(y, highest=400.0):
    """The strongest frequency below ``highest`` Hz (the fundamental of these 1/k harmonic tones)."""
    segment = y[0, 4000:-4000]
    size = 1 << 18
    spectrum = torch.fft.rfft(segment * torch.hann_window(segment.numel()), n=size).abs()
    return float(spectrum[: int(highest * size / SR)].argmax()) * SR / size


@pytest.mark.parametrize("rate", [0.5, 0.8, 1.25, 2.0])
def test_time_stretch_keeps_the_pitch_and_gives_the_exact_length(rate):
    x = harmonic()
    y = time_stretch(x, rate)
    assert y.shape == (1, round(x.shape[-1] / rate))
    assert pitch(y) == pytest.approx(220.0, rel=0.01)
    level = 20 * math.log10(float(y[:, 4000:-4000].std() / x.std()))
    assert abs(level) <= 1.0


def test_stretch_command(tmp_path, capsys):
    neuraudio.write_audio(tmp_path / "a.wav", harmonic(330.0), SR, bit_depth="32f")
    assert main(["stretch", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--rate", "0.5", "-q"]) == 0
    y, rate = neuraudio.read_audio(tmp_path / "b.wav")
    assert rate == SR and y.shape == (1, 4 * SR) and pitch(y) == pytest.approx(330.0, rel=0.01)
    assert main(["stretch", str(tmp_path / "a.wav"), str(tmp_path / "c.wav"), "--rate", "0"]) == 1
    assert "outside 0.05..20" in capsys.readouterr().err


@pytest.mark.parametrize("semitones", [-12.0, -5.0, 7.0, 12.0])
def test_pitch_shift_moves_the_pitch_and_keeps_the_level(semitones):
    from neuraudio.vocoding import PitchShift

    model = PitchShift(SR, 1024, 256)
    x = harmonic(220.0, 2.0)
    y = model.process(x, semitones=semitones)
    assert pitch(y, highest=600.0) == pytest.approx(220.0 * 2 ** (semitones / 12), rel=0.01)
    level = 20 * math.log10(float(y[:, 4000:-4000].std() / x[:, 4000:-4000].std()))
    assert -1.5 <= level <= 0.5, level
    assert (model.process(x) - x)[:, 1024:-1024].abs().max() <= 1e-5  # 0 semitones: the input itself


def test_pitch_shift_streams_like_offline_while_the_knob_moves():
    from neuraudio.vocoding import PitchShift

    model = PitchShift(SR, 512, 128)
    x = harmonic(300.0, 0.5)
    errors = assert_stream_matches_offline(model, x, patterns=["1", "hop", "3hop+7", "random"],
                                           changes=[(2000, {"semitones": 12.0}), (5000, {"semitones": -7.0})])
    assert max(errors.values()) <= 1e-5
    assert neuraudio.load("pitch-shift").latency == 2048 - 512
