"""The dual-mask echo canceller behind the linear stage: streaming == offline with two inputs, its size, and the
training path with precomputed linear-stage signals."""

import pytest
import torch

from neuraudio.aec.neural import DualMaskAEC
from neuraudio.nn.d3 import D3Block, MultiDilatedConv
from neuraudio.runtime.engine import Engine
from neuraudio.stream.stft import stft
from neuraudio.stream.testing import assert_stream_matches_offline
from tests.test_aec_linear import echo_path


def scrambled(**kwargs):
    model = DualMaskAEC(**kwargs).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def test_d3_block_steps_like_its_whole_sequence():
    block = D3Block(6, growth=5, layers=3, freq_dilations=(1, 2)).eval()
    x = torch.randn(2, 6, 17, 23)
    whole = block(x)
    assert whole.shape == (2, 6 + 3 * 5, 17, 23)
    cache = block.init_cache(2, 17)
    pieces = [block.step(x[..., a:b], cache) for a, b in ((0, 1), (1, 8), (8, 9), (9, 23))]
    assert torch.allclose(torch.cat(pieces, dim=-1), whole, atol=1e-5)
    moved = x.clone()
    moved[..., 10:] += 1.0
    assert torch.equal(block(moved)[..., :10], whole[..., :10])  # causal: the past does not see the future


def test_a_multi_dilated_layer_steps_by_one_convolution_over_bins_like_its_convolutions():
    torch.manual_seed(0)
    layer = MultiDilatedConv(10, 8, (1, 2, 4), time_dilation=4).eval()
    for frames in (1, 3):
        x = torch.randn(2, 10, 21, layer.reach + frames)
        with torch.no_grad():
            assert (layer.step(x) - layer(x)).abs().max() <= 1e-5
    with torch.no_grad():
        layer.convs[1].weight.add_(1.0)  # the cached kernel follows the weights
        assert (layer.step(x) - layer(x)).abs().max() <= 1e-5
    x.requires_grad_()
    layer.step(x).sum().backward()  # where gradients are wanted it is the convolutions
    assert x.grad is not None and layer.convs[0].weight.grad is not None


def test_a_multi_dilated_layer_is_its_groups_convolutions_in_value_and_gradient_channels_last_too():
    torch.manual_seed(0)
    layer = MultiDilatedConv(10, 8, (1, 2, 4), time_dilation=2)
    x = torch.randn(2, 10, 21, layer.reach + 7)
    for memory_format in (torch.contiguous_format, torch.channels_last):
        xm = x.contiguous(memory_format=memory_format)
        layer.zero_grad()
        torch.cat([conv(xm) for conv in layer.convs], dim=1).square().sum().backward()  # the definition
        expected = [p.grad.clone() for p in layer.parameters()]
        reference = torch.cat([conv(xm) for conv in layer.convs], dim=1).detach()
        layer.zero_grad()
        out = layer(xm)  # one convolution over the widest kernel
        out.square().sum().backward()
        assert (out - reference).abs().max() <= 1e-5
        for got, want in zip((p.grad for p in layer.parameters()), expected):
            assert (got - want).abs().max() <= 1e-4 * want.abs().max()


def test_an_engine_made_inside_inference_mode_steps_a_dual_mask_aec():
    ref, echo = echo_path(0.5, seed=4)
    model = scrambled(complex_masks=True, fine_channels=4, blocks=2)
    with torch.inference_mode():  # the engine's copy of the weights are inference tensors (no version counter)
        make = lambda block_size, channels: Engine(model, 16000, 160, block_multiple=160).prepare()  # noqa: E731
        errors = assert_stream_matches_offline(model, echo + 0.01 * torch.randn_like(echo), ref, patterns=["hop"],
                                               block_size=160, block_multiple=160, make_runner=make)
    assert max(errors.values()) <= 1e-4


def test_dual_mask_aec_streams_like_offline_with_two_inputs():
    ref, echo = echo_path(1.0, seed=2)
    near = 0.05 * torch.sin(2 * torch.pi * 300 * torch.arange(16000) / 16000)[None]
    model = scrambled()
    assert model.latency == 160  # 10 ms, the linear stage included
    assert_stream_matches_offline(model, echo + near, ref)


def test_residual_subtraction_in_front_of_the_network_streams_like_offline_and_is_saved(tmp_path):
    import neuraudio
    from neuraudio.hub import save_folder

    ref, echo = echo_path(1.0, seed=2)
    near = 0.05 * torch.sin(2 * torch.pi * 300 * torch.arange(16000) / 16000)[None]
    model = scrambled(residual_subtraction=1.0, complex_masks=True, fine_channels=4)
    errors = assert_stream_matches_offline(model, echo + near, ref)
    assert max(errors.values()) <= 1e-5
    plain = scrambled(complex_masks=True, fine_channels=4)  # the same weights, E unchanged
    assert (model.process(echo + near, ref) - plain.process(echo + near, ref)).abs().max() > 1e-3
    save_folder(model, tmp_path / "m", name="m", task="echo")
    loaded = neuraudio.load(tmp_path / "m")
    assert loaded.residual_subtraction == 1.0
    assert torch.equal(loaded.process(echo + near, ref), model.process(echo + near, ref))
    with pytest.raises(ValueError, match="residual_subtraction"):
        DualMaskAEC(residual_subtraction=1.5)


def test_dual_mask_aec_fits_the_parameter_budget_and_trains_from_precomputed_linear_signals():
    model = scrambled()
    assert sum(p.numel() for p in model.parameters()) <= 354_000
    ref, echo = echo_path(0.5, seed=3)
    mic, target = echo + 0.01 * torch.randn(echo.shape, generator=torch.Generator().manual_seed(1)), torch.zeros_like(echo)
    e, y = model.linear.linear_signals(mic[0], ref[0])
    direct = model.training_terms(mic[None], ref[None], target[None])
    given = model.training_terms(mic[None], ref[None], target[None], e[None, None], y[None, None])
    assert torch.allclose(direct["wave"], given["wave"]) and direct["masks"].shape[1] == 2
    with torch.no_grad():  # the Processor path computes the same output (delayed by the latency, as forward is)
        assert torch.allclose(given["wave"], model.forward((mic, ref), {}), atol=1e-5)


def test_echo_items_made_on_the_fly_follow_their_scenario_and_carry_the_linear_stage(tmp_path):
    import neuraudio
    from neuraudio.examples import noisy_melody
    from neuraudio.train.echo_synth import EchoSynthSet

    (tmp_path / "speech").mkdir()
    for i in range(3):
        neuraudio.write_audio(tmp_path / "speech" / f"s{i}.wav", noisy_melody(3.0, 16000, seed=i), 16000)
    rir = torch.zeros(1, 800)
    rir[0, 40], rir[0, 300] = 1.0, 0.3
    (tmp_path / "rir").mkdir()
    neuraudio.write_audio(tmp_path / "rir" / "room.wav", rir, 16000, bit_depth="32f")
    items = EchoSynthSet(tmp_path / "speech", None, tmp_path / "rir", 16000, crop=3200, count=12,
                         measured_probability=0.5, room_pool=2, linear_stage=True, seed=5)
    again = EchoSynthSet(tmp_path / "speech", None, tmp_path / "rir", 16000, crop=3200, count=12,
                         measured_probability=0.5, room_pool=2, linear_stage=True, seed=5)
    seen = set()
    for i in range(len(items)):
        item = items[i]
        assert set(item) == {"mic", "ref", "target", "echoless", "e", "y"}
        assert all(v.shape == (1, 3200) for v in item.values())
        assert torch.allclose(item["e"], item["mic"] - item["y"], atol=1e-5)
        assert torch.equal(item["mic"], again[i]["mic"])  # a seeded set is the same every epoch
        far_end, near_end = float(item["ref"].abs().max()) > 0, float(item["target"].abs().max()) > 0
        seen.add((far_end, near_end))
        if not near_end:  # far end only: everything at the mic but the noise is echo of ref
            assert float(item["mic"].pow(2).mean()) > 0
        if not far_end:  # near end only: the microphone has no echo to lose
            assert torch.allclose(item["echoless"], item["mic"], atol=1e-6)
        else:
            assert float((item["mic"] - item["echoless"]).pow(2).mean()) > 0
    assert len(seen) >= 2 and len(items.rooms) <= 2


def test_training_terms_stay_finite_on_digital_silence_and_score_the_residual_echo():
    from neuraudio.train.enhance import EnhancementModule, _pesq_scores

    module = EnhancementModule(scrambled(stride=4, channels=8, growth=4), residual_weight=0.05, phase_weight=0.0)
    ref, echo = echo_path(1.0, seed=4)
    mic, e = echo.clone(), echo.clone()
    mic[:, :4000] = 0.0  # digital silence at the microphone: masked bins are exactly zero
    e[:, :4000] = 0.0
    batch = {"mic": mic[None], "ref": ref[None], "target": torch.zeros_like(mic)[None], "e": e[None],
             "y": torch.zeros_like(mic)[None]}
    terms = module.terms(module.model.training_terms(**batch))
    terms["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in module.model.parameters())
    # the residual term: log10 of the output's mean power per bin where the target is silent
    assert -9.0 < float(terms["residual"]) < -1.0
    assert float(terms["under"]) == 0.0  # a silent target: nothing of it can be missing
    batch["target"] = 2 * batch["mic"]  # a target louder than anything the masks can pass: all of it is "under"
    louder = module.terms(module.model.training_terms(**batch))
    assert float(louder["under"]) > 0.5 * float(louder["magnitude"]) > 0.0
    talk = 0.1 * torch.sin(2 * torch.pi * 200 * torch.arange(16000) / 16000)[None, None]
    scores = _pesq_scores(torch.cat([torch.zeros_like(talk), talk]), torch.cat([talk, talk]), 16000)
    if scores is not None:  # the [eval] extra: a silent reference is NaN, not the end of the batch's scores
        assert torch.isnan(scores[0]) and scores[1] > 4.0


def test_the_echo_term_teaches_the_echo_mask_alone():
    """Trained only through their product, two masks that start equal stay equal; the echo term (``E * m_echo``
    against the microphone without its echo) moves the echo head and leaves the noise head alone."""
    from neuraudio.train.enhance import EnhancementModule

    weights = dict(magnitude_weight=0.0, complex_weight=0.0, phase_weight=0.0, time_weight=0.0,
                   consistency_weight=0.0)
    module = EnhancementModule(DualMaskAEC(stride=4, channels=8, growth=4), echo_weight=1.0, **weights)
    ref, echo = echo_path(0.5, seed=6)
    near = 0.05 * torch.sin(2 * torch.pi * 300 * torch.arange(echo.shape[-1]) / 16000)[None]
    batch = {"mic": (echo + near)[None], "ref": ref[None], "target": near[None], "echoless": near[None]}
    terms = module.terms(module.model.training_terms(**batch))
    assert float(terms["echo"]) > 0 and torch.isclose(terms["loss"], terms["echo"])
    terms["loss"].backward()
    grad = module.model.net.heads.bias.grad
    assert float(grad[0].abs()) > 0 and float(grad[1]) == 0.0
    without = module.terms(module.model.training_terms(mic=(echo + near)[None], ref=ref[None], target=near[None]))
    assert float(without["echo"]) == 0.0  # validation clips carry no echoless target: the term is off there


def test_complex_masks_stream_like_offline_and_start_from_a_magnitude_folder(tmp_path):
    from neuraudio.hub import save_folder
    from neuraudio.train.enhance import EnhancementModule

    ref, echo = echo_path(1.0, seed=7)
    near = 0.05 * torch.sin(2 * torch.pi * 300 * torch.arange(16000) / 16000)[None]
    model = scrambled(stride=4, channels=8, growth=4, complex_masks=True)
    assert_stream_matches_offline(model, echo + near, ref)
    with torch.no_grad():  # the rotation heads turn the echo stage's phase, not its magnitude
        spectra = torch.randn(1, 3, 161, 5, dtype=torch.complex64)
        masks = torch.rand(1, 4, 161, 5)
        turned = model.echo_stage(spectra, masks)
        assert torch.allclose(turned.abs(), (spectra[:, 0] * masks[:, 0]).abs(), atol=1e-6)
        assert float((turned.angle() - spectra[:, 0].angle()).abs().max()) > 0.1
    plain = scrambled(stride=4, channels=8, growth=4)
    save_folder(plain, tmp_path / "plain", name="plain", task="echo")
    widened = EnhancementModule(DualMaskAEC(stride=4, channels=8, growth=4, complex_masks=True),
                                init_from=str(tmp_path / "plain")).model.eval()
    with torch.no_grad():
        # the same function, to rounding (heads of another width take another convolution kernel)
        assert (widened.process(echo + near, ref) - plain.process(echo + near, ref)).abs().max() <= 1e-6
    with pytest.raises(ValueError, match="does not match"):
        DualMaskAEC(stride=2, channels=8, growth=4, complex_masks=True).load_narrower(plain.state_dict())


def test_a_fine_stage_and_more_blocks_stream_like_offline_and_grow_from_a_smaller_folder(tmp_path):
    """The fine stage (every bin, convolutions along frequency only) and extra blocks start as the same function
    from a folder without them; trained, the fine stage makes the masks differ between neighbouring bins, which the
    coarse heads (every fourth bin, upsampled linearly) cannot."""
    from neuraudio.hub import save_folder
    from neuraudio.train.enhance import EnhancementModule

    ref, echo = echo_path(1.0, seed=8)
    near = 0.05 * torch.sin(2 * torch.pi * 300 * torch.arange(16000) / 16000)[None]
    small = dict(stride=4, channels=8, growth=4, complex_masks=True)
    assert_stream_matches_offline(scrambled(**small, blocks=3, fine_channels=6), echo + near, ref)
    plain = scrambled(**small)
    save_folder(plain, tmp_path / "plain", name="plain", task="echo")
    grown = EnhancementModule(DualMaskAEC(**small, blocks=3, fine_channels=6), init_from=str(tmp_path / "plain"),
                              echo_weight=0.0, echo_complex_weight=1.0)
    assert sum(p.numel() for p in grown.model.parameters()) > sum(p.numel() for p in plain.parameters())
    with torch.no_grad():
        assert (grown.model.eval().process(echo + near, ref) - plain.process(echo + near, ref)).abs().max() <= 1e-6
    with pytest.raises(ValueError, match="does not match"):  # narrower blocks are not a smaller model of this one
        DualMaskAEC(**small | {"growth": 6}, fine_channels=6).load_narrower(plain.state_dict())

    # the complex echo term alone reaches the fine stage and the rotation heads, and a step makes the masks jagged
    grown.train()
    batch = {"mic": (echo + near)[None], "ref": ref[None], "target": near[None], "echoless": near[None]}
    weights = ("magnitude", "complex", "phase", "time", "consistency", "under", "echo")
    grown.weights.update({k: 0.0 for k in weights})
    terms = grown.terms(grown.model.training_terms(**batch))
    assert float(terms["echo_complex"]) > 0 and torch.isclose(terms["loss"], terms["echo_complex"])
    terms["loss"].backward()
    last = grown.model.net.fine[-1]
    assert float(last.weight.grad.abs().sum()) > 0 and float(last.bias.grad[1]) == 0.0  # not the noise head
    with torch.no_grad():
        last.weight.add_(-0.5 * last.weight.grad.sign())
        masks = grown.model.net(grown.model._features(torch.randn(1, 3, 161, 20, dtype=torch.complex64)))
    jagged = (masks[:, 0, 2:] - 2 * masks[:, 0, 1:-1] + masks[:, 0, :-2]).abs()  # second difference along bins
    assert float(jagged[:, 0::4].mean()) > 1e-3  # inside the coarse heads' spacing a linear upsampling has none


def test_the_gain_term_scores_the_targets_own_gain_and_pushes_masks_open():
    """``(1 - <out, s> / <s, s>)^2`` on items whose target talks: 0.25 for an output at half the target, 0 for the
    target itself and for a silent target; its gradient opens the masks of a model that cuts the near end."""
    from neuraudio.train.enhance import EnhancementModule

    weights = dict(magnitude_weight=0.0, complex_weight=0.0, phase_weight=0.0, time_weight=0.0,
                   consistency_weight=0.0)
    module = EnhancementModule(DualMaskAEC(stride=4, channels=8, growth=4), gain_weight=1.0, **weights)
    ref, echo = echo_path(0.5, seed=9)
    near = 0.05 * torch.sin(2 * torch.pi * 300 * torch.arange(echo.shape[-1]) / 16000)[None]
    out = module.model.training_terms(mic=(echo + near)[None], ref=ref[None], target=near[None])
    for scale, expected in ((0.5, 0.25), (1.0, 0.0)):
        terms = module.terms(dict(out, wave=scale * out["clean"]))
        assert float(terms["gain"]) == pytest.approx(expected, abs=1e-6)
    silent = module.model.training_terms(mic=echo[None], ref=ref[None], target=torch.zeros_like(near)[None])
    assert float(module.terms(silent)["gain"]) == 0.0
    with torch.no_grad():
        module.model.net.heads.bias.fill_(-1.0)  # both masks at about 0.27: the near end cut by 11 dB
    terms = module.terms(module.model.training_terms(mic=(echo + near)[None], ref=ref[None], target=near[None]))
    assert float(terms["gain"]) > 0.3 and torch.isclose(terms["loss"], terms["gain"])
    terms["loss"].backward()
    assert float(module.model.net.heads.bias.grad[:2].max()) < 0  # descending the loss raises both masks


def test_the_erle_hinge_term_reads_far_end_only_items_in_decades_and_stops_at_its_cap():
    """On items whose target is silent throughout: ``relu(log10(P_out / P_mic) + cap / 10)``; the microphone passed
    through scores the cap (5 decades at 50 dB), 60 dB of loss scores 0, and items whose target talks are not read."""
    from neuraudio.train.enhance import EnhancementModule

    weights = dict(magnitude_weight=0.0, complex_weight=0.0, phase_weight=0.0, time_weight=0.0,
                   consistency_weight=0.0)
    module = EnhancementModule(DualMaskAEC(stride=4, channels=8, growth=4), erle_weight=1.0, **weights)
    ref, echo = echo_path(0.5, seed=9)
    silent = module.model.training_terms(mic=echo[None], ref=ref[None], target=torch.zeros_like(echo)[None])
    mic = silent["input"]
    for scale, expected in ((1.0, 5.0), (10 ** (-20 / 20), 3.0), (10 ** (-60 / 20), 0.0)):
        terms = module.terms(dict(silent, wave=scale * mic))
        assert float(terms["erle_hinge"]) == pytest.approx(expected, abs=1e-3)
    terms = module.terms(dict(silent, wave=0.01 * mic))  # 40 dB
    assert float(terms["loss"] - terms["erle_hinge"]) == 0.0 and float(terms["erle_hinge"]) == pytest.approx(1.0, abs=5e-3)
    near = 0.05 * torch.sin(2 * torch.pi * 300 * torch.arange(echo.shape[-1]) / 16000)[None]
    talking = module.model.training_terms(mic=(echo + near)[None], ref=ref[None], target=near[None])
    assert float(module.terms(talking)["erle_hinge"]) == 0.0
    # no term may share a name with a validation metric (a loss term named "erle" once replaced val/erle, in dB, in
    # the logs of every batch without a far-end-only item)
    assert not set(module.terms(talking)) & {"erle", "pesq", "si_sdr", "train_hours"}
    with pytest.raises(ValueError, match="erle_cap_db"):
        EnhancementModule(DualMaskAEC(stride=4, channels=8, growth=4), erle_cap_db=0.0)


def test_the_noise_reduction_knob_bounds_the_noise_mask_alone_and_streams_like_offline():
    """``noise_reduction_db`` holds the noise mask at or above ``10^(-dB/20)``: 60 (its maximum) changes nothing, 0
    leaves only the echo stage, and a change mid-stream glides the same way offline and block by block."""
    ref, echo = echo_path(1.0, seed=3)
    noise = 0.02 * torch.randn(1, 16000, generator=torch.Generator().manual_seed(4))
    mic = echo + noise
    model = scrambled(complex_masks=True)
    with torch.no_grad():
        model.net.heads.bias[1] = -6.0  # a noise mask near 0.0025 (-52 dB) everywhere, so the bound shows
        free = model.process(mic, ref)
        assert torch.equal(model.process(mic, ref, noise_reduction_db=60.0), free)
        spectra = stft(torch.stack([mic, mic, mic], dim=1), 320, 160, model.window)  # any spectra: the masks alone
        masks = model.net(model._features(spectra))
        knob = {"noise_reduction_db": torch.full((1, 16000), 12.0)}
        bounded = model.limit_noise(masks, knob, 1)
        assert float(masks[:, 1].min()) < 0.01 and float(bounded[:, 1].min()) == pytest.approx(10 ** (-12 / 20))
        assert torch.equal(bounded[:, 0], masks[:, 0]) and torch.equal(bounded[:, 2:], masks[:, 2:])
        echo_only = model.process(mic, ref, noise_reduction_db=0.0)
        louder = model.process(mic, ref, noise_reduction_db=12.0)
    assert float(echo_only.square().mean()) > float(louder.square().mean()) > 4 * float(free.square().mean())
    errors = assert_stream_matches_offline(model, mic, ref, knobs={"noise_reduction_db": 12.0},
                                           changes=[(5000, {"noise_reduction_db": 30.0})])
    assert max(errors.values()) <= 1e-5
    with pytest.raises(ValueError, match="outside its range"):
        model.process(mic, ref, noise_reduction_db=70.0)


def test_a_folder_carries_its_noise_reduction_default(tmp_path):
    import neuraudio
    from neuraudio.hub import save_folder

    ref, echo = echo_path(0.5, seed=3)
    model = scrambled(noise_reduction_db=12.0)
    model.net.heads.bias.data[1] = -6.0
    assert model.knobs["noise_reduction_db"].default == 12.0 and DualMaskAEC.knobs["noise_reduction_db"].default == 60
    save_folder(model, tmp_path / "m", name="m", task="echo")
    loaded = neuraudio.load(tmp_path / "m")
    assert loaded.knobs["noise_reduction_db"].default == 12.0
    with torch.no_grad():
        assert torch.equal(loaded.process(echo, ref), model.process(echo, ref, noise_reduction_db=12.0))
        assert not torch.equal(loaded.process(echo, ref), model.process(echo, ref, noise_reduction_db=60.0))
