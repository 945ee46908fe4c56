import pytest
import torch

import neuraudio
from neuraudio import hub
from neuraudio.composite import Chain
from neuraudio.effects.linear import LinearEffect
from neuraudio.stream.testing import assert_stream_matches_offline


def test_chain_of_an_echo_canceller_and_a_denoiser_streams_and_adds_latencies():
    aec, denoiser = neuraudio.load("aec-linear"), neuraudio.load("denoise-mmse")
    chain = Chain([aec.config, denoiser.config])
    assert chain.inputs == {"mic": 1, "ref": 1} and chain.hop == 640 and chain.latency == 160 + 384
    assert set(chain.knobs) == {"suppression", "floor_db", "residual_subtraction", "noise_reduction_db", "reduction_db"}
    gen = torch.Generator().manual_seed(0)
    mic, ref = 0.1 * torch.randn(1, 8000, generator=gen), 0.1 * torch.randn(1, 8000, generator=gen)
    # each part sees the previous one's output as a live chain would: the canceller's stream, delayed by its latency
    # (160 samples), start-up included, which a denoiser that learns its noise from the first frames notices
    stream = aec.stream(block_size=160, block_multiple=160)
    stream.set_knobs(suppression=1.0)
    cancelled = torch.cat([stream.process(m, r) for m, r in zip(mic.split(160, -1), ref.split(160, -1))], dim=-1)
    expected = denoiser.process(cancelled, reduction_db=12.0)[:, aec.latency :]
    out = chain.process(mic, ref, suppression=1.0, reduction_db=12.0)
    assert (out[:, : expected.shape[-1]] - expected)[:, :-1000].abs().max() <= 1e-5  # the end: the chain pads
    errors = assert_stream_matches_offline(chain, mic, ref, patterns=["hop-1", "random"],
                                           changes=[(3000, {"reduction_db": 30.0})])
    assert max(errors.values()) <= 1e-5


def test_chain_saves_and_loads_as_one_folder(tmp_path):
    first = LinearEffect(48000, 8)
    with torch.no_grad():
        for p in first.parameters():
            p.normal_()
    chain = Chain([first.config, neuraudio.load("spectral-gate").config])
    chain.parts[0].load_state_dict(first.state_dict())
    folder = hub.save_folder(chain, tmp_path / "chain", name="chain", task="effect")
    loaded = neuraudio.load(folder)
    x = 0.1 * torch.randn(1, 4800)
    assert isinstance(loaded, Chain) and torch.equal(loaded.process(x), chain.process(x))
    assert all(key.startswith("parts.0.") for key in loaded.state_dict())


def test_chain_errors_are_sentences():
    aec = neuraudio.load("aec-linear").config
    with pytest.raises(ValueError, match="only the first may"):
        Chain([neuraudio.load("denoise-mmse").config, aec])
    with pytest.raises(ValueError, match="share one sample rate"):
        Chain([neuraudio.load("denoise-mmse").config, neuraudio.load("spectral-gate").config])
    with pytest.raises(ValueError, match="only the last part of a chain may"):
        Chain([neuraudio.load("hpss").config, neuraudio.load("hpss").config])
