import math

import pytest
import torch

from neuraudio.effects.dsp import Compressor, Overdrive
from neuraudio.effects.recurrent import RecurrentEffect
from neuraudio.effects.tcn import TCNEffect
from neuraudio.stream.testing import assert_stream_matches_offline, offline_knobs, run_stream

SR = 16000
GAIN = {"gain": {"default": 0.5, "minimum": 0.0, "maximum": 1.0, "unit": "0..1"}}
TWO = {**GAIN, "attack_ms": {"default": 10.0, "minimum": 1.0, "maximum": 100.0, "unit": "ms", "scale": "log"}}


def randomized(model, scale=0.1):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model


MODELS = {
    "lstm-film": lambda: RecurrentEffect(SR, 16, GAIN, "film"),
    "lstm-concat": lambda: RecurrentEffect(SR, 16, TWO, "concat"),
    "lstm-fixed": lambda: RecurrentEffect(SR, 16),
    "lstm-gated": lambda: RecurrentEffect(SR, 16, GAIN, "concat", silence_gate=3),
    "tcn-film": lambda: TCNEffect(SR, 8, 3, 5, 2, TWO),
    "tcn-fixed": lambda: TCNEffect(SR, 8, 3, 5, 1),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_streaming_equals_offline_with_and_without_knobs(name):
    model = randomized(MODELS[name]())
    x = 0.5 * torch.randn(2, 500)
    x[0, 200:260] = 0.0  # digital silence (what the silence gate acts on), across block boundaries
    x[1, 97:103] = 0.0
    changes = [(150, {"gain": 0.9}), (320, {"gain": 0.1})] if model.knobs else []
    errors = assert_stream_matches_offline(model, x, changes=changes, block_size=100,
                                           patterns=["1", "3hop+7", "random"] if "lstm" in name else ["3hop+7", "random"])
    assert max(errors.values()) <= 1e-5
    assert model.latency == 0 and model.stream(block_size=64, channels=2).latency == 0


def test_tcn_receptive_field_is_derived_from_its_layers():
    model = randomized(TCNEffect(SR, 4, 3, 4, 2))
    rf = model.receptive_field
    assert rf == 1 + 2 * 2 * (1 + 2 + 4 + 8)
    x1 = torch.randn(1, 400)
    x2 = x1.clone()
    x2[0, 100:110] += 1.0
    d = (model.process(x2) - model.process(x1))[0].abs()
    assert d[:100].max() == 0  # causal: nothing changes before the change
    assert d[100:110].min() > 0
    assert d[109 + rf :].max() == 0  # finite memory: the receptive field, derived from the layers


def test_knobs_matter_after_training_like_perturbation():
    model = randomized(RecurrentEffect(SR, 16, GAIN, "film"), scale=0.5)
    x = 0.5 * torch.randn(1, 2000)
    assert (model.process(x, gain=0.0) - model.process(x, gain=1.0)).abs().max() > 1e-3


def test_knob_step_glides_and_jumps_no_more_than_a_slow_change():
    model = randomized(RecurrentEffect(SR, 16, GAIN, "film"), scale=0.5)
    t = torch.arange(SR) / SR
    x = (0.5 * torch.sin(2 * math.pi * 220 * t))[None]
    step, applied = run_stream(model, x, [128] * (SR // 128) + [SR % 128], 128, {"gain": 0.0},
                               [(SR // 2, {"gain": 1.0})])
    # offline with the stream's smoothed trajectory gives the same samples
    offline = model.process(x, **offline_knobs(model, SR, {"gain": 0.0}, applied))
    assert (step - offline).abs().max() <= 1e-5
    ramp = torch.cat([torch.zeros(SR // 4), torch.linspace(0, 1, SR // 2), torch.ones(SR - 3 * SR // 4)])
    slow = model.process(x, gain=ramp)
    assert step.diff().abs().max() <= 1.05 * slow.diff().abs().max() + 1e-4


def test_compressor_static_curve_and_timing():
    comp = Compressor(SR)
    t = torch.arange(3 * SR) / SR
    sine = (0.5 * torch.sin(2 * math.pi * 100 * t))[None]  # peak -6.02 dBFS
    y = comp.process(sine, threshold_db=-20.0, ratio=4.0, knee_db=0.0, attack_ms=0.1, release_ms=1000.0)
    assert 20 * math.log10(float(y[:, 2 * SR :].abs().max())) == pytest.approx(-20 + (-6.02 + 20) / 4, abs=0.05)
    below = comp.process(0.01 * sine, threshold_db=-20.0, ratio=4.0, knee_db=0.0)
    assert torch.allclose(below, 0.01 * sine, atol=1e-7)  # under the threshold: untouched
    # attack: a level step reaches ~63 % of its final reduction after one time constant
    step = torch.cat([torch.full((SR,), 0.01), torch.full((SR,), 0.5)])[None]
    out = comp.process(step, threshold_db=-20.0, ratio=20.0, knee_db=0.0, attack_ms=10.0, release_ms=1000.0)
    reduction = 20 * torch.log10(step / out)[0]
    final = float(reduction[-1])
    assert float(reduction[SR + round(0.010 * SR)]) == pytest.approx(final * (1 - math.exp(-1)), rel=0.03)


def test_compressor_soft_knee_is_continuous():
    comp = Compressor(SR)
    levels = torch.linspace(-40, 0, 401)
    x = (10 ** (levels / 20))[None, :, None].expand(1, 401, 4000).reshape(401, 4000)[:, None, :].contiguous()
    y = comp.process(x, threshold_db=-20.0, ratio=4.0, knee_db=12.0, attack_ms=0.1)
    out_db = 20 * torch.log10(y[:, 0, -1])
    assert out_db.diff().min() > 0 and out_db.diff().max() < 0.11  # monotonic, no step at the knee edges


def test_overdrive_adds_harmonics_and_tone_darkens():
    od = Overdrive(SR)
    t = torch.arange(SR) / SR
    x = (0.5 * torch.sin(2 * math.pi * 200 * t))[None]
    spec = lambda y: torch.fft.rfft(y[0]).abs()  # noqa: E731
    y = od.process(x, drive_db=30.0, tone=1.0, level_db=0.0)
    s = spec(y)
    assert s[400] > 0.01 * s[200] and s[600] > 0.01 * s[200]  # 2nd (asymmetry) and 3rd harmonics
    dark = spec(od.process(x, drive_db=30.0, tone=0.0, level_db=0.0))
    assert dark[3000] < 0.5 * s[3000]


def test_knob_spec_errors():
    with pytest.raises(ValueError, match="knob 'gain'"):
        RecurrentEffect(SR, 8, {"gain": {"default": 0.5}})
    with pytest.raises(ValueError, match="conditioning"):
        RecurrentEffect(SR, 8, GAIN, "sum")
    with pytest.raises(ValueError, match="scale must be one of"):
        RecurrentEffect(SR, 8, {"gain": {**GAIN["gain"], "scale": "exp"}})


def test_knob_scales_map_travel_to_features():
    from neuraudio.nn.conditioning import KnobNormalizer

    specs = {"gain": {**GAIN["gain"], "scale": "audio"}, "attack_ms": TWO["attack_ms"],
             "mix": {"default": 50.0, "minimum": 0.0, "maximum": 100.0, "unit": "%"}}
    norm = KnobNormalizer(specs)
    values = {"gain": torch.tensor([0.0, 0.5, 1.0]), "attack_ms": torch.tensor([1.0, 10.0, 100.0]),
              "mix": torch.tensor([0.0, 25.0, 100.0])}
    features = norm(values)
    # audio taper: 10% at mid-travel; log: mid-point of log(1)..log(100) at 10 ms; linear: 25 of 0..100
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.5, 0.25], [1.0, 1.0, 1.0]])
    assert torch.allclose(features, expected, atol=1e-6)


@pytest.mark.parametrize("cls, scale", [("GainEffect", 0.3), ("GatedGainEffect", 0.5)])
def test_gain_effect_streams_like_offline_starts_as_identity_and_batches(cls, scale):
    from neuraudio.effects import gain

    model = getattr(gain, cls)(SR, 8, 16, TWO)
    x = 0.5 * torch.randn(2, 600)
    assert torch.equal(model.process(x), x)  # identity at initialisation
    model = randomized(model, scale=scale)
    changes = [(150, {"gain": 0.9}), (320, {"attack_ms": 90.0})]
    errors = assert_stream_matches_offline(model, x, changes=changes, block_size=55,
                                           patterns=["1", "hop-1", "hop", "3hop+7", "random"])
    assert max(errors.values()) <= 1e-5
    assert model.latency == 0 and model.stream(block_size=64, channels=2).latency == 15
    batch = torch.stack([x, x.flip(-1)])
    gains = torch.tensor([[0.2], [0.8]]).expand(2, 600)
    together = model.process(batch, gain=gains)
    assert torch.allclose(together[0], model.process(x, gain=0.2), atol=1e-6)
    assert torch.allclose(together[1], model.process(x.flip(-1), gain=0.8), atol=1e-6)


def test_gain_effect_output_is_the_input_times_a_smooth_gain():
    from neuraudio.effects.gain import GainEffect

    model = randomized(GainEffect(SR, 8, 16), scale=0.5)
    x = 0.3 * torch.randn(1, 1600) + 0.01
    gain = model.process(x) / x
    assert torch.all(gain > 0)
    # linear interpolation between frame gains: the second difference vanishes inside every frame
    second = gain[0, 2:] - 2 * gain[0, 1:-1] + gain[0, :-2]
    inside = torch.tensor([(n + 1) % 16 not in (0, 15) for n in range(1598)])
    assert second[inside].abs().max() <= 1e-4 * gain.abs().max()


def test_ballistics_attack_release_and_gradient():
    from neuraudio.effects.gain import _ballistics_torch, ballistics

    # a step up is followed at the attack rate, the step down at the release rate
    target = torch.tensor([[10.0] * 3 + [0.0] * 3])
    s = ballistics(target, torch.full_like(target, 0.5), torch.full_like(target, 0.25), torch.zeros(1))
    assert torch.allclose(s, torch.tensor([[5.0, 7.5, 8.75, 6.5625, 4.921875, 3.69140625]]))
    # the NumPy loop with its hand-written backward equals autograd through the tensor loop
    gen = torch.Generator().manual_seed(0)
    args = [torch.randn(3, 40, generator=gen, dtype=torch.float64), torch.rand(3, 40, generator=gen, dtype=torch.float64),
            torch.rand(3, 40, generator=gen, dtype=torch.float64), torch.randn(3, generator=gen, dtype=torch.float64)]
    args = [a.requires_grad_() for a in args]
    assert torch.autograd.gradcheck(ballistics, args)
    ours, reference = ballistics(*args), _ballistics_torch(*args)
    weights = torch.randn(3, 40, generator=gen, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad((ours * weights).sum(), args),
                    torch.autograd.grad((reference * weights).sum(), args)):
        assert torch.allclose(a, b, atol=1e-12)
    assert torch.allclose(ours, reference, atol=1e-12)
    # both strategies of the float64 loop (per row for a few rows, vectorised over many) give the same numbers
    from neuraudio.effects.gain import _ballistics_loop

    many = [torch.cat([a.detach()] * 3).numpy() for a in args]  # 9 rows: NumPy over rows
    few = _ballistics_loop(*(m[:3] for m in many))[0]            # 3 rows: Python floats per row
    looped = _ballistics_loop(*many)[0]
    for part in (looped[:3], looped[3:6], looped[6:]):
        assert abs(part - few).max() <= 1e-12 and abs(part - reference.detach().numpy()).max() <= 1e-12


def test_gated_gain_effect_inference_path_equals_the_training_path():
    from neuraudio.effects.gain import GatedGainEffect

    model = randomized(GatedGainEffect(SR, 8, 16, TWO), scale=0.5)
    x = 0.5 * torch.randn(2, 1, 1600)
    knobs = {"gain": torch.full((2, 1600), 0.7), "attack_ms": torch.full((2, 1600), 3.0)}
    with torch.no_grad():
        fast = model(x, knobs)  # NumPy float64 path
    trained = model(x, knobs)   # autograd path
    assert trained.requires_grad and (fast - trained).abs().max() <= 1e-5 * x.abs().max()


def test_gated_gain_effect_learns_a_compressor_quickly():
    """A few hundred Adam steps on one setting of the reference compressor reach a small ESR (the LSTM gain
    computer does not get there in this budget)."""
    from neuraudio.effects.dsp import Compressor
    from neuraudio.effects.gain import GatedGainEffect
    from neuraudio.train.losses import esr

    torch.manual_seed(0)
    sr = 16000
    t = torch.arange(2 * sr) / sr
    level = torch.where((t * 4).floor() % 2 == 0, 0.5, 0.05)  # 4 Hz level steps
    x = (level * torch.sin(2 * torch.pi * 220 * t) * (1 + 0.3 * torch.randn(t.numel()))).reshape(1, 1, -1)
    y = Compressor(sr).process(x, threshold_db=-30.0, ratio=4.0, attack_ms=5.0, release_ms=50.0)
    model = GatedGainEffect(sr, 16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(300):
        loss = esr(model(x, {}), y)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) <= 0.02 and float(loss) <= 0.2 * first


def test_recurrent_effect_widening_preserves_the_function():
    narrow = randomized(RecurrentEffect(SR, 8, GAIN, "concat"), scale=0.5)
    wide = RecurrentEffect(SR, 12, GAIN, "concat")
    assert wide.load_narrower(narrow.state_dict()) == 8
    x = 0.5 * torch.randn(2, 800)
    assert (wide.process(x, gain=0.3) - narrow.process(x, gain=0.3)).abs().max() <= 1e-5
    # the new units are live: a gradient reaches their incoming weights through the output
    wide.process(x, gain=0.3).square().sum().backward()
    assert wide.head.weight.grad[:, 8:].abs().sum() > 0
    with pytest.raises(ValueError, match="cannot widen"):
        RecurrentEffect(SR, 12, GAIN, "film").load_narrower(narrow.state_dict())
    with pytest.raises(ValueError, match="not a RecurrentEffect with the same parts"):
        wide.load_narrower(TCNEffect(SR, 4, 3, 2, 1, GAIN).state_dict())


def test_silence_gate_zeroes_the_output_after_n_zero_samples_only():
    model = randomized(RecurrentEffect(SR, 16, GAIN, "concat", silence_gate=3), scale=0.5)
    ungated = RecurrentEffect(SR, 16, GAIN, "concat")
    ungated.load_state_dict(model.state_dict())
    x = 0.5 * torch.randn(1, 400)
    x[0, 100:102] = 0.0   # a run of 2: shorter than the gate
    x[0, 200:300] = 0.0   # a run of 100
    y, reference = model.process(x, gain=0.7), ungated.process(x, gain=0.7)
    gated = torch.zeros(400, dtype=torch.bool)
    gated[202:300] = True  # from the third zero on
    assert torch.all(y[0, gated] == 0.0)
    assert torch.equal(y[0, ~gated], reference[0, ~gated])  # elsewhere exactly the same model
    assert reference[0, 202:300].abs().max() > 1e-3        # so the gate did something there
    with pytest.raises(ValueError, match="silence_gate"):
        RecurrentEffect(SR, 8, silence_gate=-1)


def test_recurrent_effect_runs_long_inputs_in_chunks_with_the_same_numbers(monkeypatch):
    from neuraudio.effects import recurrent

    model = randomized(RecurrentEffect(SR, 16, GAIN, "concat"), scale=0.5)
    x = 0.5 * torch.randn(2, 3000)
    gain = torch.linspace(0, 1, 3000)
    whole = model.process(x, gain=gain)
    monkeypatch.setattr(recurrent, "CHUNK", 256)
    assert (model.process(x, gain=gain) - whole).abs().max() <= 1e-6
