import pytest
import torch

from neuraudio.stream.chunked import ChunkedRunner

RADIUS = 300  # receptive field each way: three chunks of 100


def moving_average(x: torch.Tensor) -> torch.Tensor:
    """Non-causal: each output sample averages RADIUS samples either side (zeros beyond the edges)."""
    kernel = torch.linspace(1.0, 2.0, 2 * RADIUS + 1).expand(x.shape[1], 1, -1) / (3 * RADIUS)
    return torch.nn.functional.conv1d(x, kernel, padding=RADIUS, groups=x.shape[1])


@pytest.mark.parametrize("crossfade", [0, 30, 80])
def test_equals_single_pass_when_receptive_field_fits_in_context(crossfade):
    x = torch.randn(2, 10_000)
    reference = moving_average(x[None])[0]
    y = ChunkedRunner(moving_average, chunk=100, context=RADIUS, crossfade=crossfade, batch_size=3).run(x)
    assert y.shape == x.shape
    assert (y - reference).abs().max() <= 1e-5


def test_differs_measurably_when_context_is_too_short():
    x = torch.randn(2, 10_000)
    reference = moving_average(x[None])[0]
    y = ChunkedRunner(moving_average, chunk=100, context=RADIUS // 3, crossfade=30).run(x)
    assert (y - reference).abs().max() > 1e-2


def test_blocks_from_disk_give_the_same_output_with_bounded_windows():
    x = torch.randn(1, 20_000)
    seen = []

    def fn(batch):
        seen.append(batch.shape)
        return moving_average(batch)

    runner = ChunkedRunner(fn, chunk=512, context=RADIUS, crossfade=128, batch_size=2)
    sizes = torch.randint(0, 3000, (40,), generator=torch.Generator().manual_seed(2)).tolist()
    blocks, pos = [], 0
    for n in sizes:
        blocks.append(x[:, pos : pos + n])
        pos += n
    blocks.append(x[:, pos:])
    outs = list(runner.run_blocks(blocks))
    y = torch.cat(outs, -1)
    assert y.shape == x.shape
    assert (y - moving_average(x[None])[0]).abs().max() <= 1e-5
    assert all(s[0] <= 2 and s[-1] == 512 + 2 * RADIUS for s in seen)
    assert len(outs) > 5  # output is handed back as it becomes final, not only at the end


def test_short_signal_and_argument_errors():
    x = torch.randn(1, 10)
    assert torch.allclose(ChunkedRunner(moving_average, chunk=256, context=RADIUS).run(x),
                          moving_average(x[None])[0], atol=1e-6)
    with pytest.raises(ValueError, match="crossfade"):
        ChunkedRunner(moving_average, chunk=256, crossfade=256)
    with pytest.raises(ValueError, match="chunk"):
        ChunkedRunner(moving_average, chunk=0)
