import pytest
import torch

from neuraudio.stream.chunked import ChunkedProcessor, ChunkedRunner
from neuraudio.stream.testing import assert_stream_matches_offline

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


class WideAverage(ChunkedProcessor):
    """A centred moving average of 201 samples: its reach (100 each way) exceeds a context of 40."""

    def __init__(self, crossfade=0):
        super().__init__(16000, chunk=400, context=40, crossfade=crossfade)

    def process_window(self, x, knobs):
        return torch.nn.functional.avg_pool1d(x.reshape(-1, 1, x.shape[-1]), 201, 1, 100,
                                              count_include_pad=True).reshape(x.shape)


def test_chunked_processor_crossfade_softens_the_seams_of_a_model_that_reaches_past_its_context():
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0)).cumsum(-1) * 0.01  # a smooth walk
    truth = WideAverage().process_window(x, {})
    hard, soft = WideAverage().process(x), WideAverage(crossfade=40).process(x)
    assert WideAverage(crossfade=40).latency == 80
    jumps = lambda y: float(y.diff(dim=-1)[:, 500:-500].abs().max())  # noqa: E731
    # the seams are the largest steps of the hard-cut output (measured 0.129; blended 0.0125; one pass 0.0027)
    assert jumps(soft) < 0.2 * jumps(hard) and jumps(truth) < jumps(soft)
    errors = assert_stream_matches_offline(WideAverage(crossfade=40), x[:, :3000], patterns=["hop-1", "random"],
                                           block_size=1207)
    assert max(errors.values()) <= 1e-5
    with pytest.raises(ValueError, match="crossfade must be in 0..min"):
        WideAverage(crossfade=41)


class GridModel(ChunkedProcessor):
    """Holds each 16-sample frame of a fixed grid at its mean (a model whose error depends on where its frame grid
    falls), within windows of 400 samples with 64 of context."""

    def __init__(self):
        super().__init__(16000, chunk=400, context=64)

    def process_window(self, x, knobs):
        frames = x.reshape(*x.shape[:-1], -1, 16)
        return frames.mean(-1, keepdim=True).expand_as(frames).reshape(x.shape)


def test_shifts_average_passes_at_spread_offsets_and_stream_like_offline():
    t = torch.arange(4000) / 16000
    x = torch.sin(2 * torch.pi * 300 * t)[None]
    model = GridModel()
    plain = model.process(x)
    assert model.shifts == 1 and torch.equal(model.set_shifts(1).process(x), plain)
    model.set_shifts(4)
    assert model.shift_offsets == [0, 16, 32, 48] and model.max_shift == 64
    shifted = model.process(x)
    # by hand, away from the signal's start: each pass delayed by the offset, moved back, averaged
    by_hand = sum(GridModel().process_window(torch.nn.functional.pad(x, (o, 0)), {})[..., o:]
                  for o in (0, 16, 32, 48)) / 4
    assert float((shifted - by_hand)[..., 400:3600].abs().max()) <= 1e-6
    # the offsets are whole frames here, so every pass holds the same grid: a 300 Hz sine's error is unchanged;
    # offsets that are not multiples of the frame move the grid, and the average is closer to the input
    model.set_shifts(3)  # offsets 0, 21, 43
    error = lambda y: float((y - x)[..., 400:3600].pow(2).mean())  # noqa: E731
    assert error(model.process(x)) < 0.5 * error(plain)  # measured 0.33
    errors = assert_stream_matches_offline(model, x[:, :3000], patterns=["hop-1", "random"], block_size=1207)
    assert max(errors.values()) <= 1e-5
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="shifts must be a whole number"):
            model.set_shifts(bad)
    with pytest.raises(ValueError, match="too little to shift"):
        model.set_shifts(65)
