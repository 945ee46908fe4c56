"""The classical references on a CUDA GPU: the same numbers as on the CPU, streaming equal to offline (skipped
without a GPU, as in CI; benchmarks/gpu_checks.sh runs them on a lent one)."""

import copy

import pytest
import torch

from neuraudio.aec import LinearAEC
from neuraudio.enhancement import LogMMSE
from neuraudio.separation import HPSS
from neuraudio.stream.testing import assert_stream_matches_offline
from neuraudio.vocoding import GriffinLim

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SR = 16000


def signals(n, count, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(1, n, generator=gen) for _ in range(count)]


@pytest.mark.parametrize("name", ["hpss", "griffin-lim", "denoise-mmse", "aec-linear"])
def test_reference_models_on_cuda_match_the_cpu_and_stream_like_offline(name):
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = {"hpss": lambda: HPSS(SR, 256, 64, harmonic_frames=9, percussive_bins=9, chunk_seconds=0.25),
             "griffin-lim": lambda: GriffinLim(SR, 512, 128, n_mels=64, fmax=None, n_iter=8, context_frames=4,
                                               chunk_seconds=0.25),
             "denoise-mmse": lambda: LogMMSE(SR),
             "aec-linear": lambda: LinearAEC(SR)}[name]()
    inputs = signals(SR, len(model.input_channels()))
    on_cpu = model.process(*inputs)
    gpu = copy.deepcopy(model).cuda()
    on_gpu = gpu.process(*(x.cuda() for x in inputs)).cpu()
    if name == "griffin-lim":
        # iterative phase retrieval amplifies the last-bit differences of cuFFT and pocketfft (on an H100 the samples
        # failed a 1e-3 tolerance), so the two devices are compared by their spectra, not sample by sample
        from neuraudio.metrics import mrstft

        assert float(mrstft(on_gpu, on_cpu)) <= 0.05
    else:
        assert (on_gpu - on_cpu).abs().max() <= 1e-3 * max(1.0, float(on_cpu.abs().max()))
    errors = assert_stream_matches_offline(gpu, *inputs, patterns=["3hop+7", "random"], device="cuda")
    assert max(errors.values()) <= 1e-4


def test_separators_on_cuda_match_the_cpu_and_the_streaming_one_streams_like_offline():
    """The three trainable separators (tiny, untrained) give the CPU's numbers on CUDA; the streaming one also
    streams block by block like offline there."""
    from neuraudio.separation.hybrid import HybridSeparator
    from neuraudio.separation.query import QueryBandSplit
    from neuraudio.separation.streaming import StreamingSeparator

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    rate = 8000
    mix = 0.1 * torch.randn(2, rate, generator=torch.Generator().manual_seed(1))
    query = 0.1 * torch.randn(2, rate // 2, generator=torch.Generator().manual_seed(2))
    models = {
        "hybrid": HybridSeparator(sample_rate=rate, stems=("low", "high"), n_fft=512, hop=64, width=4, depth=2,
                                  stride=4, dim=16, blocks=1, kernel=3, chunk_seconds=0.25, context_seconds=0.25),
        "stream": StreamingSeparator(rate, ("low", "high"), n_fft=256, hop=64, dim=16, layers=2, kernel=3),
        "query": QueryBandSplit(rate, n_fft=512, hop=128, bands=12, dim=16, layers=1, query_dim=8,
                                chunk_seconds=0.5),
    }
    for name, model in models.items():
        model = model.eval()
        if name == "query":
            model = model.with_query(query)
        with torch.inference_mode():
            on_cpu = model.process(mix)
            gpu = copy.deepcopy(model).cuda()
            on_gpu = gpu.process(mix.cuda()).cpu()
        assert on_gpu.shape == on_cpu.shape
        assert (on_gpu - on_cpu).abs().max() <= 1e-4 * max(1.0, float(on_cpu.abs().max())), name
        if name == "stream":
            errors = assert_stream_matches_offline(gpu, mix, patterns=["hop", "random"], device="cuda")
            assert max(errors.values()) <= 1e-4
