import math

import pytest
import torch

import neuraudio
from neuraudio.separation import HPSS
from neuraudio.separation.hpss import median_filter
from neuraudio.stream.testing import assert_stream_matches_offline

SR = 16000


def tone_and_clicks(seconds=3.0, channels=1):
    t = torch.arange(int(seconds * SR)) / SR
    tone = 0.3 * sum(torch.sin(2 * math.pi * 220 * k * t) / k for k in range(1, 5))
    clicks = torch.zeros_like(t)
    clicks[:: SR // 4] = 0.9  # a click every 250 ms
    return tone.expand(channels, -1).clone(), clicks.expand(channels, -1).clone()


def test_median_filter_against_a_loop():
    x = torch.randn(3, 11)
    y = median_filter(x, 5, dim=-1)
    padded = torch.nn.functional.pad(x, (2, 2))
    expected = torch.stack([padded[:, i : i + 5].median(dim=-1).values for i in range(11)], dim=-1)
    assert torch.equal(y, expected)


def test_tone_goes_to_harmonic_and_clicks_to_percussive():
    tone, clicks = tone_and_clicks()
    model = HPSS(SR, 512, 128, chunk_seconds=1.0)
    y = model.process(tone + clicks)
    assert y.shape == (2, 1, 3 * SR)
    assert (y.sum(0) - (tone + clicks)).abs().max() <= 1e-5  # the stems add up to the input
    harmonic, percussive = y[0], y[1]
    inner = slice(SR // 2, -SR // 2)

    def snr(estimate, target):
        return float(10 * torch.log10(target[..., inner].pow(2).sum() / (estimate - target)[..., inner].pow(2).sum()))

    assert snr(harmonic, tone) >= 10.0 and snr(percussive, clicks) >= 5.0
    # the separation is far better than leaving the mix in either stem
    assert snr(harmonic, tone) >= snr(tone + clicks, tone) + 5.0


def test_chunked_equals_one_pass_and_streams_like_offline():
    tone, clicks = tone_and_clicks(2.0, channels=2)
    x = tone + 0.5 * clicks.roll(1000, -1)
    model = HPSS(SR, 256, 64, harmonic_frames=9, percussive_bins=9, chunk_seconds=0.25)
    assert model.hop == 62 * 64 and model.context == 256 + 4 * 64 and model.latency == model.context
    one_pass = model.process_window(x, {})
    assert (model.process(x) - one_pass).abs().max() <= 1e-5
    errors = assert_stream_matches_offline(model, x[..., : 3 * model.hop], patterns=["hop-1", "3hop+7", "random"],
                                           block_size=3 * model.hop + 7)
    assert max(errors.values()) <= 1e-5
    stream = model.stream(block_size=model.hop, channels=2, block_multiple=model.hop)
    assert stream.latency == model.context


def test_builtin_hpss_is_listed_and_refuses_bad_settings():
    model = neuraudio.load("hpss")
    assert model.stems == ("harmonic", "percussive") and model.task == "separation"
    assert {r["name"]: r for r in neuraudio.list_models()}["hpss"]["stems"] == ["harmonic", "percussive"]
    with pytest.raises(ValueError, match="harmonic_frames must be an odd number"):
        HPSS(SR, harmonic_frames=4)
