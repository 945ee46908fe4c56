"""The hybrid waveform/spectrogram separator: chunked windows equal one pass, streaming equals offline, stems that
sum to the mixture when asked, and a few training steps that lower the loss on a two-source toy problem."""

import pytest
import torch

from neuraudio.separation.hybrid import HybridSeparator
from neuraudio.stream.testing import assert_stream_matches_offline
from neuraudio.train.separate import SeparationModule

SR = 8000


def tiny(**kwargs):
    torch.manual_seed(0)
    settings = dict(sample_rate=SR, stems=("low", "high"), n_fft=512, hop=64, width=4, depth=2, stride=4, dim=16,
                    blocks=1, kernel=3, chunk_seconds=0.25, context_seconds=0.25)
    settings.update(kwargs)
    return HybridSeparator(**settings).eval()


def toy(seconds=1.0, seed=0):
    """Two sources: a low drone and high clicks, stereo, ``(stems, 2, time)``."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    low = 0.3 * torch.sin(2 * torch.pi * (100 + 50 * torch.rand(1, generator=gen)) * t)
    clicks = torch.zeros_like(t)
    clicks[torch.randint(0, t.numel(), (int(8 * seconds),), generator=gen)] = 1.0
    high = torch.nn.functional.conv1d(clicks[None, None], torch.randn(1, 1, 16, generator=gen) * 0.3, padding=8)[0, 0, : t.numel()]
    return torch.stack([torch.stack([low, 0.8 * low]), torch.stack([0.7 * high, high])])


def train(module, batch, steps):
    """``steps`` Adam steps (lr 3e-3) on one batch; returns the loss before the first."""
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    first = float(module._common_step(batch, "train")["loss"].detach())
    for _ in range(steps):
        loss = module._common_step(batch, "train")["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return first


def test_chunked_windows_equal_one_pass_and_streaming_equals_offline():
    model = tiny()
    assert model.context >= model.receptive_field_samples  # the windows see all the model can reach
    stems = toy(2.0)
    mix = stems.sum(0)
    chunked = model.process(mix)
    assert chunked.shape == (2, 2, mix.shape[-1])
    with torch.no_grad():  # one pass over the signal with the windows' zeros around it (biases make silence
        ctx = model.context  # map to features that are not zero, so the padding must be the same)
        whole = model.separate(torch.nn.functional.pad(mix, (ctx, ctx))[None])[0][..., ctx:-ctx]
    assert (chunked - whole).abs().max() <= 1e-5
    assert max(assert_stream_matches_offline(model, mix[:, : SR], patterns=["hop", "random"], block_size=300).values()) <= 1e-5


def test_stems_sum_to_the_mixture_when_constrained():
    mix = toy(1.0).sum(0)
    free, bound = tiny().process(mix), tiny(sum_to_mixture=True).process(mix)
    assert (free.sum(0) - mix).abs().max() > 1e-2  # an untrained model does not by itself
    assert (bound.sum(0) - mix).abs().max() <= 1e-5


def test_training_steps_lower_the_loss_and_score_sdr_per_stem():
    module = SeparationModule(tiny(chunk_seconds=0.5).train())
    batch = {"stems": torch.stack([toy(0.5, seed=s) for s in range(4)])}
    batch["mixture"] = batch["stems"].sum(1)
    first = train(module, batch, 80)
    terms = module._common_step(batch, "val")
    assert float(terms["loss"]) < 0.2 * first  # measured 0.007 from 0.138
    assert {"sdr_low", "sdr_high", "sdr"} <= set(terms) and float(terms["sdr_low"]) > 10.0  # measured 22 dB


def test_bad_geometry_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match="hop must be a power of stride 4"):
        tiny(hop=96)
    with pytest.raises(ValueError, match="must be divisible by stride"):
        tiny(n_fft=200)


def test_training_items_remix_stems_across_songs_and_sum_to_their_mixture(tmp_path):
    import neuraudio
    from neuraudio.datasets.separation import SeparationFolder, SeparationSet

    for song, level in (("a", 0.1), ("b", 0.4)):  # constant stems: a stem's level tells which song it came from
        (tmp_path / song).mkdir()
        for i, stem in enumerate(("low", "high")):
            neuraudio.write_audio(tmp_path / song / f"{stem}.wav", torch.full((2, 4000), level * (i + 1)), SR,
                                  bit_depth="32f")
    folder = SeparationFolder(tmp_path, SR, 2)
    torch.manual_seed(0)
    items = [SeparationSet(folder, ["a", "b"], 1000, 200, remix=True)[i] for i in range(200)]
    mixed_songs = 0
    for item in items:
        assert torch.allclose(item["mixture"], item["stems"].sum(0), atol=1e-6)
        factor = torch.tensor([{"low": 1.0, "high": 2.0}[stem] for stem in folder.stems])
        levels = item["stems"].abs().mean(dim=(1, 2)) / factor  # undo the stem's own factor
        origin = (levels > 0.2).tolist()  # song b, whatever the +-3 dB gain
        mixed_songs += origin[0] != origin[1]
    # half the items (cross_song 0.5) draw each stem from a random song, and half of those mix the two songs
    assert 25 <= mixed_songs <= 80
    plain = SeparationSet(folder, ["a"], None)[0]
    assert torch.equal(plain["mixture"], plain["stems"].sum(0))  # validation items are untouched


def test_streaming_separator_streams_like_offline_and_its_stems_sum_to_the_mixture():
    from neuraudio.separation.streaming import StreamingSeparator

    torch.manual_seed(0)
    model = StreamingSeparator(SR, ("low", "high"), n_fft=256, hop=64, dim=16, layers=2, kernel=3).eval()
    with torch.no_grad():
        model.head.bias.normal_()  # masks away from 0.5 everywhere
    assert model.latency == 192  # n_fft - hop with whole hops
    mix = toy(1.0).sum(0)
    assert max(assert_stream_matches_offline(model, mix, patterns=["hop", "random"], block_size=300).values()) <= 1e-5
    y = model.process(mix)
    assert y.shape == (2, 2, mix.shape[-1]) and (y.sum(0) - mix).abs().max() <= 1e-5
    module = SeparationModule(model.train())
    batch = {"stems": torch.stack([toy(0.5, seed=s) for s in range(4)])}
    batch["mixture"] = batch["stems"].sum(1)
    first = train(module, batch, 60)
    assert float(module._common_step(batch, "val")["loss"]) < 0.5 * first


def test_stem_groups_sum_file_stems_into_one_output(tmp_path):
    import neuraudio
    from neuraudio.datasets.common import DataError
    from neuraudio.datasets.separation import SeparationFolder

    (tmp_path / "s").mkdir()
    for i, stem in enumerate(("drums", "bass", "vocals"), start=1):
        neuraudio.write_audio(tmp_path / "s" / f"{stem}.wav", torch.full((2, 800), 0.1 * i), SR, bit_depth="32f")
    folder = SeparationFolder(tmp_path, SR, 2, ["vocals", "accompaniment"], {"accompaniment": ["drums", "bass", "other"]})
    item = folder.read("s", 0, 800)
    assert torch.allclose(item["stems"][0], torch.full((2, 800), 0.3)) and torch.allclose(item["stems"][1], torch.full((2, 800), 0.3))
    assert torch.allclose(item["mixture"], torch.full((2, 800), 0.6))
    with pytest.raises(DataError, match="stems bass, drums are not among the recipe's stems"):
        SeparationFolder(tmp_path, SR, 2, ["vocals", "accompaniment"])


def test_query_model_binds_a_query_and_learns_to_extract_what_it_names():
    from neuraudio.separation.query import QueryBandSplit, band_edges

    edges = band_edges(257, 12, SR)
    assert edges[0] == 0 and edges[-1] == 257 and all(b - a >= 2 for a, b in zip(edges, edges[1:]))
    assert edges[1] - edges[0] < edges[-1] - edges[-2]  # finer at low frequencies
    torch.manual_seed(0)
    model = QueryBandSplit(SR, n_fft=512, hop=128, bands=12, dim=16, layers=1, query_dim=8, chunk_seconds=0.5,
                           context_seconds=0.25)
    stems = toy(1.0)
    with pytest.raises(ValueError, match="needs a query clip first"):
        model.process(stems.sum(0))
    assert model.context >= model.receptive_field_samples
    bound = model.with_query(toy(1.0, seed=9)[0]).eval()
    mix = stems.sum(0)
    with torch.no_grad():  # chunked windows equal one pass with the windows' zeros around it
        ctx = model.context
        whole = bound.separate(torch.nn.functional.pad(mix, (ctx, ctx))[None], bound.query_embedding)[0][..., ctx:-ctx]
    assert (bound.process(mix) - whole).abs().max() <= 1e-5
    # training: the query is the wanted source elsewhere in time (another seed of the toy), half low, half high
    module = SeparationModule(model.train())
    items = [toy(0.5, seed=s) for s in range(8)]
    queries = [toy(0.5, seed=100 + s) for s in range(8)]
    pick = [s % 2 for s in range(8)]
    batch = {"mixture": torch.stack([i.sum(0) for i in items]),
             "stems": torch.stack([i[p][None] for i, p in zip(items, pick)]),
             "query": torch.stack([q[p] for q, p in zip(queries, pick)])}
    first = train(module, batch, 60)
    assert float(module._common_step(batch, "val")["loss"]) < 0.6 * first
    model.eval()
    mix = stems.sum(0)
    low = model.with_query(toy(1.0, seed=50)[0]).process(mix)[0]
    high = model.with_query(toy(1.0, seed=50)[1]).process(mix)[0]
    assert not model._query_bound if hasattr(model, "_query_bound") else True  # with_query left the model unbound
    # the query decides the output: each bound copy is closer to the source its query named than to the other
    from neuraudio import metrics
    assert float(metrics.sdr(low, stems[0])) > float(metrics.sdr(low, stems[1]))
    assert float(metrics.sdr(high, stems[1])) > float(metrics.sdr(high, stems[0]))


def test_query_items_take_an_audible_stem_and_a_query_of_it_from_elsewhere(tmp_path):
    import neuraudio
    from neuraudio.datasets.separation import QuerySet, SeparationFolder

    t = torch.arange(4000) / SR
    for song, f in (("a", 200.0), ("b", 300.0)):
        (tmp_path / song).mkdir()
        neuraudio.write_audio(tmp_path / song / "tone.wav", 0.3 * torch.sin(2 * torch.pi * f * t).expand(2, -1), SR,
                              bit_depth="32f")
        neuraudio.write_audio(tmp_path / song / "silence.wav", torch.zeros(2, 4000), SR, bit_depth="32f")
    folder = SeparationFolder(tmp_path, SR, 2)
    items = QuerySet(folder, ["a", "b"], 1000, 800, count=6, random=False, seed=3)
    again = QuerySet(folder, ["a", "b"], 1000, 800, count=6, random=False, seed=3)
    for i in range(len(items)):
        item = items[i]
        assert item["stems"].shape == (1, 2, 1000) and item["query"].shape == (2, 800)
        assert torch.equal(item["mixture"], again[i]["mixture"])  # validation items are fixed
        assert float(item["stems"].pow(2).mean()) > 1e-3  # the silent stem is never the target
        assert torch.allclose(item["mixture"], item["stems"][0], atol=1e-6)  # (the other stem is silent)
        assert float(item["query"].pow(2).mean()) > 1e-3  # the query is the tone too, from some song


def test_query_items_can_target_a_group_of_stems_with_a_query_of_that_group(tmp_path):
    import neuraudio
    from neuraudio.datasets.separation import QuerySet, SeparationFolder

    t = torch.arange(4000) / SR
    for song in ("a", "b"):
        (tmp_path / song).mkdir()
        for name, f in (("low", 200.0), ("high", 900.0), ("bass", 60.0)):
            neuraudio.write_audio(tmp_path / song / f"{name}.wav", 0.2 * torch.sin(2 * torch.pi * f * t).expand(2, -1),
                                  SR, bit_depth="32f")
    folder = SeparationFolder(tmp_path, SR, 2, groups={"other": ["low", "high"]})
    items = QuerySet(folder, ["a", "b"], 1000, 800, count=12, random=False, seed=1, group_probability=1.0)
    for i in range(len(items)):
        item = items[i]
        both = folder.read_stem("a", "other", 0, 1000)
        # every target is the group: two tones summed, not one (its power is that of two equal tones)
        assert abs(float(item["stems"].pow(2).mean()) - float(both.pow(2).mean())) < 2e-3
        assert abs(float(item["query"].pow(2).mean()) - float(both.pow(2).mean())) < 2e-3
        assert item["mixture"].shape == (2, 1000)
    never = QuerySet(folder, ["a", "b"], 1000, 800, count=12, random=False, seed=1, group_probability=0.0)
    single = 0.2 ** 2 / 2
    assert all(abs(float(never[i]["stems"].pow(2).mean()) - single) < 2e-3 for i in range(12))


def test_ensemble_fit_beats_its_members_streams_and_its_wiener_stems_sum_to_the_mixture(tmp_path):
    import neuraudio
    from neuraudio import hub, metrics
    from neuraudio.separation.ensemble import Ensemble

    a, b = tiny(), tiny(stems=("high", "low"), width=6)  # another stem order and width
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    ensemble = Ensemble([a.config, b.config]).eval()
    ensemble.members[0].load_state_dict(a.state_dict())
    ensemble.members[1].load_state_dict(b.state_dict())
    songs = [(s.sum(0), s) for s in (toy(1.0, seed=i) for i in range(3))]
    weights = ensemble.fit(songs)
    assert weights.shape == (2, 2)

    def error(model, order):
        return sum(float((model.process(m)[order] - s).pow(2).sum()) for m, s in songs)

    own = error(ensemble, [0, 1])
    assert own <= min(error(a, [0, 1]), error(b, [1, 0])) + 1e-6  # never worse than the best member on these songs
    assert max(assert_stream_matches_offline(ensemble, songs[0][0], patterns=["hop", "random"], block_size=300).values()) <= 1e-5
    hub.save_folder(ensemble, tmp_path / "ens", name="ens", task="separation")
    loaded = neuraudio.load(tmp_path / "ens")
    assert torch.equal(loaded.weights, ensemble.weights)
    assert (loaded.process(songs[0][0]) - ensemble.process(songs[0][0])).abs().max() <= 1e-6
    wiener = Ensemble([a.config, b.config], wiener=True, n_fft=256, hop=64).eval()
    wiener.load_state_dict(ensemble.state_dict())
    y = wiener.process(songs[0][0])
    assert (y.sum(0) - songs[0][0]).abs().max() <= 1e-3  # the filter shares the mixture among the stems
    assert float(metrics.sdr(y, songs[0][1])) >= float(metrics.sdr(ensemble.process(songs[0][0]), songs[0][1])) - 3.0
    with pytest.raises(ValueError, match="needs the whole song"):
        wiener.stream(block_size=256)


def test_an_ensemble_takes_a_specialist_for_the_stems_it_has():
    from neuraudio.separation.ensemble import Ensemble
    from neuraudio.separation.streaming import StreamingSeparator

    a = tiny()  # (low, high)
    torch.manual_seed(1)
    specialist = StreamingSeparator(SR, ("high", "rest"), n_fft=256, hop=64, dim=16, layers=2, kernel=3).eval()
    ensemble = Ensemble([a.config, specialist.config]).eval()
    ensemble.members[0].load_state_dict(a.state_dict())
    ensemble.members[1].load_state_dict(specialist.state_dict())
    assert ensemble.stems == ("low", "high")
    assert ensemble.weights.tolist() == [[1.0, 0.5], [0.0, 0.5]]  # the specialist shares only "high"
    songs = [(s.sum(0), s) for s in (toy(1.0, seed=i) for i in range(3))]
    weights = ensemble.fit(songs)
    assert float(weights[1, 0]) == 0.0 and float(weights[1, 1]) != 0.0

    def error(model, stem):
        return sum(float((model.process(m)[list(model.stems).index(stem)] - s[["low", "high"].index(stem)])
                         .pow(2).sum()) for m, s in songs)

    assert error(ensemble, "high") <= min(error(a, "high"), error(specialist, "high")) + 1e-6
    assert error(ensemble, "low") <= error(a, "low") + 1e-6  # a's "low", scaled by least squares
    assert max(assert_stream_matches_offline(ensemble, songs[0][0], patterns=["hop", "random"], block_size=300).values()) <= 1e-5
    with pytest.raises(ValueError, match="shares none of its stems"):
        Ensemble([a.config, StreamingSeparator(SR, ("x", "y"), n_fft=256, hop=64, dim=8, layers=1).config])


def test_the_magnitude_term_is_zero_at_the_target_and_bounded_where_a_stem_is_silent():
    module = SeparationModule(tiny(), magnitude_weight=1.0)
    stems = toy(0.5)
    assert float(module._magnitude(stems, stems)) <= 1e-10
    silent = torch.zeros_like(stems)
    noise = 0.01 * torch.randn(stems.shape, generator=torch.Generator().manual_seed(0))
    assert 0.0 < float(module._magnitude(noise, silent)) < 1.0  # spectral convergence would divide by zero here
    estimate = (0.5 * stems).requires_grad_()
    module._magnitude(estimate, stems).backward()
    assert torch.isfinite(estimate.grad).all() and float(estimate.grad.abs().sum()) > 0
    batch = {"mixture": stems.sum(0)[None], "stems": stems[None]}
    terms = module._common_step(batch, "train")
    assert float(terms["loss"]) == pytest.approx(float(terms["l1"] + terms["magnitude"]), rel=1e-6)


def test_an_ensemble_of_members_named_by_reference_saves_only_its_weights(tmp_path):
    import neuraudio
    from neuraudio import hub
    from neuraudio.separation.ensemble import Ensemble

    a, b = tiny(), tiny(stems=("high", "low"), width=6)
    hub.save_folder(a, tmp_path / "a", name="a", task="separation")
    hub.save_folder(b, tmp_path / "b", name="b", task="separation")
    ensemble = Ensemble([{"model": str(tmp_path / "a")}, b.config]).eval()  # one referenced, one embedded
    ensemble.members[1].load_state_dict(b.state_dict())
    songs = [(s.sum(0), s) for s in (toy(1.0, seed=i) for i in range(2))]
    ensemble.fit(songs)
    keys = set(ensemble.state_dict())
    assert "weights" in keys and not any(k.startswith("members.0.") for k in keys)
    assert any(k.startswith("members.1.") for k in keys)
    hub.save_folder(ensemble, tmp_path / "ens", name="ens", task="separation")
    loaded = neuraudio.load(tmp_path / "ens")
    mix = songs[0][0]
    assert (loaded.process(mix) - ensemble.process(mix)).abs().max() <= 1e-6
