"""The shipped neural echo canceller ``aec-16k`` (linear stage + dual-mask network): far-end single talk leaves
little, a near-end talker alone passes nearly unchanged, a bulk delay that jumps mid-stream is followed, the command
line on files and the Engine with two inputs at 10 ms blocks."""

import torch

import neuraudio
from neuraudio import metrics
from neuraudio.examples import noisy_melody
from neuraudio.stream.testing import assert_stream_matches_offline
from tests.test_aec_linear import erle

SR = 16000
NAME = "aec-16k"
# thresholds: the figures measured on the shipped model (in the comments), with margin
ERLE_FAR_END_DB = 25.0      # measured 30.7 dB (aec-linear: 11.0)
NEAR_END_GAIN_DB = 2.0      # measured -1.2 dB
NEAR_END_SI_SDR_DB = 15.0   # measured 20.4 dB
ERLE_AFTER_JUMP_DB = 35.0   # measured 49.3 dB over the last 4 s


def room_echo(ref: torch.Tensor, delay: int, seed: int = 0) -> torch.Tensor:
    """``ref`` through a decaying random 30 ms response after ``delay`` samples, 6 dB down."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(480, generator=gen) * torch.exp(-torch.arange(480) / 100.0)
    h = 0.5 * h / h.norm()
    echo = torch.nn.functional.conv1d(torch.nn.functional.pad(ref, (479, 0))[None], h.flip(0).view(1, 1, -1))[0]
    return torch.nn.functional.pad(echo, (delay, 0))[:, : ref.shape[-1]]


def test_far_end_single_talk_leaves_little_echo():
    model = neuraudio.load(NAME)
    ref = noisy_melody(8.0, SR, noise_dbfs=-50.0, seed=3)
    echo = room_echo(ref, 800)
    out = model.process(echo, ref)
    assert erle(echo, out, 3 * SR) >= ERLE_FAR_END_DB


def test_a_near_end_talker_alone_passes_nearly_unchanged():
    model = neuraudio.load(NAME)
    near = 0.5 * noisy_melody(6.0, SR, noise_dbfs=-70.0, seed=4)
    out = model.process(near, torch.zeros_like(near))
    assert abs(float(metrics.near_end_gain(out, near))) <= NEAR_END_GAIN_DB
    assert float(metrics.si_sdr(out, near)) >= NEAR_END_SI_SDR_DB


def test_a_bulk_delay_that_jumps_mid_stream_is_followed():
    model = neuraudio.load(NAME)
    ref = noisy_melody(14.0, SR, noise_dbfs=-50.0, seed=5)
    half = 6 * SR
    echo = torch.cat([room_echo(ref, 800)[:, :half], room_echo(ref, 2400)[:, half:]], -1)  # 50 ms, then 150 ms
    stream = model.stream(block_size=160, channels=1, block_multiple=160)
    tracker = lambda: stream._state["linear"][0]["tracker"].delay  # noqa: E731
    pieces, before = [], None
    for s in range(0, echo.shape[-1], 160):
        pieces.append(stream.process(echo[:, s : s + 160], ref[:, s : s + 160]))
        if s + 160 == half:
            before = tracker()  # the echo path's strongest tap: 800 samples plus where the response peaks
    out = torch.cat(pieces, -1)
    assert stream.latency == model.latency == 160
    assert before is not None and abs(tracker() - before - 1600) <= 16  # it moved with the 100 ms jump
    assert erle(echo[:, : -model.latency], out[:, model.latency :], echo.shape[-1] - 4 * SR) >= ERLE_AFTER_JUMP_DB


def test_aec_command_and_engine_with_two_inputs(tmp_path):
    from neuraudio.cli import main
    from neuraudio.runtime import Engine

    model = neuraudio.load(NAME)
    ref = noisy_melody(3.0, SR, noise_dbfs=-50.0, seed=6)
    near = 0.3 * noisy_melody(3.0, SR, noise_dbfs=-70.0, seed=7)
    mic = room_echo(ref, 640) + near
    neuraudio.write_audio(tmp_path / "mic.wav", mic, SR, bit_depth="32f")
    neuraudio.write_audio(tmp_path / "ref.wav", ref, SR, bit_depth="32f")
    assert main(["aec", NAME, "--mic", str(tmp_path / "mic.wav"), "--ref", str(tmp_path / "ref.wav"),
                 str(tmp_path / "out.wav"), "--bit-depth", "32f", "-q"]) == 0
    out, rate = neuraudio.read_audio(tmp_path / "out.wav")
    assert rate == SR and (out - model.process(mic, ref)).abs().max() <= 1e-4
    assert main(["aec", NAME, "--mic", str(tmp_path / "mic.wav"), "--ref", str(tmp_path / "ref.wav"),
                 str(tmp_path / "knob.wav"), "--knob", "noise_reduction_db=6", "--bit-depth", "32f", "-q"]) == 0
    out, _ = neuraudio.read_audio(tmp_path / "knob.wav")
    assert (out - model.process(mic, ref, noise_reduction_db=6.0)).abs().max() <= 1e-4
    make = lambda block_size, channels: Engine(model, SR, 160, block_multiple=160).prepare()  # noqa: E731
    errors = assert_stream_matches_offline(model, mic[:, : SR], ref[:, : SR], patterns=["hop"], block_size=160,
                                           block_multiple=160, make_runner=make)
    assert max(errors.values()) <= 1e-4 and make(0, 0).latency == 160  # 10 ms, the linear stage included
