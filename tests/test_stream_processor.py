import threading
import time

import pytest
import torch

from neuraudio.effects import SpectralGate
from neuraudio.stream import Knob, Processor, STFTProcessor, knob_trajectory
from neuraudio.stream.processor import glide_coefficient
from neuraudio.stream.testing import assert_stream_matches_offline, block_lengths, run_stream

SR = 16000


def noisy_tones(channels=1, seconds=0.6, sr=SR):
    t = torch.arange(int(seconds * sr)) / sr
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t) * (torch.sin(2 * torch.pi * 3 * t) > 0)
    return (tone + 10 ** (-50 / 20) * torch.randn(channels, t.numel())).float()


@pytest.mark.parametrize("window", ["hann", "sqrt-hann", "vorbis"])
@pytest.mark.parametrize("n_fft,hop", [(256, 64), (512, 256)])
def test_identity_stft_processor_streams_like_offline_and_delays_by_latency(window, n_fft, hop):
    model = STFTProcessor(SR, n_fft, hop, window)
    x = torch.randn(2, 4000)
    errors = assert_stream_matches_offline(model, x)
    assert max(errors.values()) <= 1e-5
    stream = model.stream(block_size=100, channels=2)
    assert stream.latency == n_fft - 1 and model.latency == n_fft - hop
    y, _ = run_stream(model, x, block_lengths("random", hop, 100, 4000, seed=1), 100)
    lat = stream.latency
    assert (y[:, lat:] - x[:, : 4000 - lat]).abs().max() <= 1e-5
    assert (model.process(x) - x)[:, : 4000 - n_fft].abs().max() <= 1e-5


@pytest.mark.parametrize("window", ["hann", "sqrt-hann", "vorbis"])
def test_spectral_gate_streams_like_offline_with_knob_changes(window):
    model = SpectralGate(SR, n_fft=256, hop=64, window=window)
    x = noisy_tones(channels=2)
    changes = [(2500, {"threshold_db": -30.0, "reduction_db": 40.0}), (6100, {"release_ms": 20.0}),
               (7000, {"threshold_db": -70.0, "attack_ms": 1.0})]
    errors = assert_stream_matches_offline(model, x, knobs={"threshold_db": -45.0}, changes=changes)
    assert max(errors.values()) <= 1e-5


def test_harness_detects_a_stream_that_differs():
    class Leaky(STFTProcessor):
        def process_frames(self, spec, state, knobs):
            return spec * (1.0 + 0.01 * spec.shape[-1])  # depends on how many frames arrive together

    with pytest.raises(AssertionError, match="differs"):
        assert_stream_matches_offline(Leaky(SR, 256, 64), torch.randn(1, 2000), patterns=["hop"])


def test_knob_glide_does_not_depend_on_block_sizes():
    """A change set before sample 3000 gives the same output whatever the blocks around it; the same change landing
    on another sample (the first block boundary after 3000) gives a different one, which the comparison must see."""
    model = SpectralGate(SR, 256, 64)
    x = noisy_tones()
    outs = {}
    for pattern in ["1", "3hop+7", "random"]:
        lengths = (block_lengths(pattern, 64, 199, 3000, 5)  # every pattern has a boundary at 3000
                   + block_lengths(pattern, 64, 199, x.shape[-1] - 3000, 6))
        outs[pattern], applied = run_stream(model, x, lengths, 199, changes=[(3000, {"threshold_db": -20.0})])
        assert applied == [(3000, {"threshold_db": -20.0})]
    assert (outs["3hop+7"] - outs["1"]).abs().max() <= 1e-6
    assert (outs["random"] - outs["1"]).abs().max() <= 1e-6
    late, applied = run_stream(model, x, block_lengths("3hop+7", 64, 199, x.shape[-1]), 199,
                               changes=[(3000, {"threshold_db": -20.0})])
    assert applied == [(3184, {"threshold_db": -20.0})]  # 16 blocks of 199 samples
    assert (late - outs["1"]).abs().max() > 1e-4
    # the change lands on the first block boundary at or after 3000: equal for "1"; others within a block
    traj = knob_trajectory(-60.0, [(3000, -20.0)], 6000, 20.0, SR)
    assert traj[2999] == -60.0 and traj[3000] > -60.0
    a = glide_coefficient(20.0, SR)
    assert float(traj[3000 + 320 - 1]) == pytest.approx(-20.0 - 40.0 * a**320, abs=1e-4)  # one time constant


def test_first_knob_value_applies_at_once_and_later_ones_glide():
    model = SpectralGate(SR, 256, 64)
    stream = model.stream(block_size=64)
    stream.set_knobs(threshold_db=-20.0)
    assert stream._current["threshold_db"] == -20.0
    stream.process(torch.zeros(1, 64))
    stream.set_knobs(threshold_db=-40.0)
    assert stream._current["threshold_db"] == -20.0 and stream.knobs["threshold_db"] == -40.0


def test_knob_errors_are_sentences():
    model = SpectralGate(SR, 256, 64)
    stream = model.stream(block_size=64)
    with pytest.raises(ValueError, match="outside its range"):
        stream.set_knobs(threshold_db=10.0)
    with pytest.raises(ValueError, match="unknown knob"):
        stream.set_knobs(drive=1.0)
    with pytest.raises(ValueError, match="outside its range"):
        model.process(torch.zeros(1, 100), reduction_db=float("nan"))
    with pytest.raises(ValueError, match="values for a signal"):
        model.process(torch.zeros(1, 100), reduction_db=torch.zeros(50))
    with pytest.raises(ValueError, match="exceeds this stream's block_size"):
        stream.process(torch.zeros(1, 65))
    with pytest.raises(ValueError, match="shaped"):
        stream.process(torch.zeros(2, 10))


def test_reset_clears_state_and_keeps_knobs():
    model = SpectralGate(SR, 256, 64)
    x = noisy_tones()[:, :3000]
    stream = model.stream(block_size=500)
    stream.set_knobs(reduction_db=50.0)
    first = torch.cat([stream.process(b) for b in x.split(500, -1)], -1)
    stream.reset()
    assert stream.knobs["reduction_db"] == 50.0
    again = torch.cat([stream.process(b) for b in x.split(500, -1)], -1)
    assert torch.equal(first, again)


def test_batch_equals_single():
    model = SpectralGate(SR, 256, 64)
    x = torch.stack([noisy_tones(2) for _ in range(3)])
    batched = model.process(x, threshold_db=-40.0)
    for i in range(3):
        assert (batched[i] - model.process(x[i], threshold_db=-40.0)).abs().max() <= 1e-6


def test_per_sample_automation_tensor_equals_stream_changes():
    model = SpectralGate(SR, 256, 64)
    x = noisy_tones()
    n = x.shape[-1]
    ramp = torch.linspace(-80.0, -10.0, n)
    y = model.process(x, threshold_db=ramp)
    const = model.process(x, threshold_db=-80.0)
    assert (y - const)[:, : n // 10].abs().max() <= 1e-3 * const.abs().max()  # early on the ramp is near -80
    assert (y - const).abs().max() > 1e-2  # later it gates more


def test_gate_attenuates_noise_by_reduction_and_passes_tone():
    model = SpectralGate(SR, 512, 128)
    noise = 10 ** (-50 / 20) * torch.randn(1, 3 * SR)  # bins at about -72 dBFS, none above -59
    t = torch.arange(3 * SR) / SR
    tone = 0.25 * torch.sin(2 * torch.pi * 1000 * t)[None]
    y_noise = model.process(noise, threshold_db=-55.0, reduction_db=30.0)[:, SR:]
    y_tone = model.process(tone, threshold_db=-55.0, reduction_db=30.0)[:, SR:]
    drop_db = 20 * torch.log10(noise[:, SR:].std() / y_noise.std())
    assert drop_db == pytest.approx(30.0, abs=0.5)
    tone_change = 20 * torch.log10(y_tone.std() / tone[:, SR:].std())
    assert abs(float(tone_change)) <= 0.1


def test_gate_release_spans_many_frames():
    """The gain at one sample depends on frames long past: a burst followed by silence closes over release_ms."""
    model = SpectralGate(SR, 256, 64)
    x = torch.zeros(1, SR)
    x[:, : SR // 4] = 0.5 * torch.randn(1, SR // 4)
    x[:, SR // 4 :] = 10 ** (-70 / 20) * torch.randn(1, 3 * SR // 4)
    slow = model.process(x, release_ms=300.0, threshold_db=-40.0)
    fast = model.process(x, release_ms=10.0, threshold_db=-40.0)
    after = slice(SR // 4 + 1600, SR // 4 + 3200)  # 100-200 ms after the burst (> 20 frames)
    assert slow[:, after].std() > 3 * fast[:, after].std()


def test_set_knobs_from_another_thread_while_streaming():
    model = SpectralGate(SR, 256, 64)
    stream = model.stream(block_size=128)
    stop = threading.Event()

    def ui():
        v = -60.0
        while not stop.is_set():
            v = -20.0 if v == -60.0 else -60.0
            stream.set_knobs(threshold_db=v)
            time.sleep(1e-4)  # a UI thread moving a slider, not a busy loop starving the audio thread

    thread = threading.Thread(target=ui)
    thread.start()
    try:
        for block in noisy_tones(seconds=1.0).split(128, -1):
            y = stream.process(block)
            assert y.shape == block.shape and torch.isfinite(y).all()
    finally:
        stop.set()
        thread.join()


def test_processor_validates_its_inputs():
    class TwoIn(Processor):
        in_channels = 2

    with pytest.raises(ValueError, match="takes 2 channels"):
        TwoIn(SR, 1).process(torch.zeros(1, 10))
    with pytest.raises(ValueError, match="channels, time"):
        SpectralGate(SR).process(torch.zeros(10))
    with pytest.raises(ValueError, match="outside"):
        Knob(5.0, 0.0, 1.0, "0..1")
    with pytest.raises(ValueError, match="sample_rate"):
        STFTProcessor(0)


def test_blocks_much_larger_than_the_frame():
    model = SpectralGate(SR, 256, 64)
    x = noisy_tones()
    errors = assert_stream_matches_offline(model, x, patterns=["random"], block_size=4000)
    assert errors["random"] <= 1e-5


class EchoSubtract(Processor):
    """Two inputs: ``mic - gain * (ref delayed by 3 samples)``, in hops of 4 (a toy echo canceller)."""

    inputs = {"mic": 1, "ref": 1}
    knobs = {"gain": Knob(0.5, 0.0, 1.0, "0..1")}

    def __init__(self, sample_rate: int = SR):
        super().__init__(sample_rate, hop=4)

    def forward(self, x, knobs):
        mic, ref = x
        delayed = torch.nn.functional.pad(ref, (3, 0))[..., : ref.shape[-1]]
        return mic - knobs["gain"] * delayed

    def init_state(self, channels, max_samples, device):
        return [torch.zeros(1, 3, device=device)]

    def step(self, x, state, knobs):
        mic, ref = x
        history = torch.cat([state[0], ref], dim=-1)
        state[0] = history[..., -3:]
        return mic - knobs["gain"] * history[..., : ref.shape[-1]]


class BandSplit(Processor):
    """Stems ``("low", "high")``: a 4-tap moving average and the rest, for inputs of any channel count."""

    stems = ("low", "high")

    def __init__(self, sample_rate: int = SR):
        super().__init__(sample_rate, hop=1)

    def _split(self, x, history):
        padded = torch.cat([history, x], dim=-1)
        low = sum(padded[..., k : k + x.shape[-1]] for k in range(4)) / 4
        return torch.stack([low, x - low], dim=-3), padded[..., -3:]

    def forward(self, x, knobs):
        return self._split(x, x.new_zeros(*x.shape[:-1], 3))[0]

    def init_state(self, channels, max_samples, device):
        return [torch.zeros(channels, 3, device=device)]

    def step(self, x, state, knobs):
        y, state[0] = self._split(x, state[0])
        return y


def test_two_input_model_streams_like_offline_with_knob_changes():
    mic, ref = torch.randn(1, 3000), torch.randn(1, 3000)
    model = EchoSubtract()
    y = model.process(mic, ref, gain=1.0)
    assert torch.allclose(y[:, 3:], mic[:, 3:] - ref[:, :-3]) and y.shape == (1, 3000)
    errors = assert_stream_matches_offline(model, mic, ref, changes=[(700, {"gain": 0.0}), (2000, {"gain": 0.9})])
    assert max(errors.values()) <= 1e-6
    stream = model.stream(block_size=64)
    assert stream.latency == 3 and stream.input_shapes == {"mic": 1, "ref": 1}


def test_two_input_errors_are_sentences():
    model = EchoSubtract()
    with pytest.raises(ValueError, match=r"takes 2 input\(s\) \(mic, ref\), got 1"):
        model.process(torch.zeros(1, 10))
    with pytest.raises(ValueError, match="takes 1 channels on input 'ref', got 2"):
        model.process(torch.zeros(1, 10), torch.zeros(2, 10))
    with pytest.raises(ValueError, match=r"must have the same length, got \[9, 10\]"):
        model.process(torch.zeros(1, 10), torch.zeros(1, 9))
    stream = model.stream(block_size=64)
    with pytest.raises(ValueError, match=r"takes 2 block\(s\) per call \(mic, ref\), got 1"):
        stream.process(torch.zeros(1, 8))
    with pytest.raises(ValueError, match=r"a block of ref must be shaped \(1, 8\)"):
        stream.process(torch.zeros(1, 8), torch.zeros(1, 7))


def test_stems_come_before_the_channels_and_stream_like_offline():
    x = torch.randn(2, 2000)
    model = BandSplit()
    y = model.process(x)
    assert y.shape == (2, 2, 2000) and torch.allclose(y.sum(0), x, atol=1e-6)  # (stems, channels, time)
    batched = model.process(torch.stack([x, 2 * x]))
    assert batched.shape == (2, 2, 2, 2000) and torch.allclose(batched[1], 2 * y, atol=1e-5)
    errors = assert_stream_matches_offline(model, x)
    assert max(errors.values()) <= 1e-6
    assert model.stream(block_size=16, channels=2).process(x[:, :16]).shape == (2, 2, 16)


@pytest.mark.parametrize("n_fft,hop", [(256, 64), (512, 128)])
def test_block_multiple_removes_the_partial_hop_wait(n_fft, hop):
    """A host that promises whole hops gets latency n_fft - hop instead of n_fft - 1, with the same numbers."""
    model = SpectralGate(SR, n_fft, hop)
    x = noisy_tones()
    stream = model.stream(block_size=4 * hop, block_multiple=hop)
    assert stream.latency == n_fft - hop == model.latency
    errors = assert_stream_matches_offline(model, x, block_multiple=hop, block_size=4 * hop,
                                           changes=[(hop * 20, {"threshold_db": -30.0})])
    assert max(errors.values()) <= 1e-5
    with pytest.raises(ValueError, match=f"not a multiple of {hop}"):
        stream.process(torch.zeros(1, hop + 1))
    with pytest.raises(ValueError, match="block_multiple must be a multiple of the model's hop"):
        model.stream(block_size=512, block_multiple=hop + 1)


class QueryFilter(Processor):
    """A query-bound toy: filters its input with the first 4 samples of the query clip, normalised (hop 1)."""

    takes_query = True

    def __init__(self, sample_rate: int = SR):
        super().__init__(sample_rate, hop=1)
        self.register_buffer("taps", torch.zeros(4))

    def bind_query(self, clip):
        taps = clip.mean(0)[:4]
        self.taps.copy_(taps / taps.abs().sum().clamp_min(1e-6))

    def forward(self, x, knobs):
        padded = torch.nn.functional.pad(x, (3, 0))
        return sum(self.taps[k] * padded[..., 3 - k : 3 - k + x.shape[-1]] for k in range(4))

    def init_state(self, channels, max_samples, device):
        return [torch.zeros(channels, 3, device=device)]

    def step(self, x, state, knobs):
        padded = torch.cat([state[0], x], dim=-1)
        state[0] = padded[..., -3:]
        return sum(self.taps[k] * padded[..., 3 - k : 3 - k + x.shape[-1]] for k in range(4))


def test_with_query_binds_a_copy_that_streams_like_offline():
    model = QueryFilter()
    x = torch.randn(2, 1000, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"needs a query clip first: model = model.with_query\(clip\)"):
        model.process(x)
    with pytest.raises(ValueError, match="needs a query clip first"):
        model.stream(64)
    from neuraudio.runtime import Engine, EngineError

    with pytest.raises(EngineError, match="needs a query clip first"):
        Engine(model, SR, 64)
    clip = torch.tensor([1.0, -2.0, 0.5, 0.5, 9.0])
    bound = model.with_query(clip)
    assert bound.taps.tolist() == [0.25, -0.5, 0.125, 0.125] and model.taps.abs().sum() == 0
    y = bound.process(x)
    expected = 0.25 * x - 0.5 * torch.nn.functional.pad(x, (1, 0))[..., :-1]
    expected += 0.125 * (torch.nn.functional.pad(x, (2, 0))[..., :-2] + torch.nn.functional.pad(x, (3, 0))[..., :-3])
    assert torch.allclose(y, expected, atol=1e-6)
    assert max(assert_stream_matches_offline(bound, x).values()) <= 1e-5
    # a clip at another rate is resampled to the model's; bad clips and models without a query get one sentence
    slow = bound.with_query(torch.sin(torch.arange(800) / 5.0), sample_rate=SR // 2)
    assert slow.taps.abs().sum() > 0.99
    with pytest.raises(ValueError, match=r"query clip must be a non-empty finite float signal"):
        model.with_query(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="takes no query clip"):
        EchoSubtract().with_query(clip)
