"""The dual-mask echo canceller behind the linear stage: streaming == offline with two inputs, its size, and the
training path with precomputed linear-stage signals."""

import torch

from neuraudio.aec.neural import DualMaskAEC
from neuraudio.nn.d3 import D3Block
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


def test_dual_mask_aec_streams_like_offline_with_two_inputs():
    ref, echo = echo_path(1.0, seed=2)
    near = 0.05 * torch.sin(2 * torch.pi * 300 * torch.arange(16000) / 16000)[None]
    model = scrambled()
    assert model.latency == 160  # 10 ms, the linear stage included
    assert_stream_matches_offline(model, echo + near, ref)


def test_dual_mask_aec_fits_the_parameter_budget_and_trains_from_precomputed_linear_signals():
    model = scrambled()
    assert sum(p.numel() for p in model.parameters()) <= 354_000
    ref, echo = echo_path(0.5, seed=3)
    mic, target = echo + 0.01 * torch.randn(echo.shape, generator=torch.Generator().manual_seed(1)), torch.zeros_like(echo)
    e, y = model.linear_signals(mic[0], ref[0])
    direct = model.training_terms(mic[None], ref[None], target[None])
    given = model.training_terms(mic[None], ref[None], target[None], e[None, None], y[None, None])
    assert torch.allclose(direct["wave"], given["wave"]) and direct["masks"].shape[1] == 2
    with torch.no_grad():  # the Processor path computes the same output (delayed by the latency, as forward is)
        assert torch.allclose(given["wave"], model.forward((mic, ref), {}), atol=1e-5)
