"""The per-bin dual-path denoisers: their classical start, streaming == offline, the sub-band layout for any bin
count, chunking, a folder round trip, and a tiny training run."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from neuraudio import metrics
from neuraudio.enhancement.dualpath import DualPathCore, DualPathDenoiser, DualPathDenoiserStream
from neuraudio.enhancement.magphase import mmse_prior
from neuraudio.enhancement.mmse import init_mmse_state
from neuraudio.stream.testing import assert_stream_matches_offline
from neuraudio.train.enhance import EnhancementModule
from tests.test_enhancement_magphase import Pairs, mixture, scramble, validation_si_sdr


@pytest.mark.parametrize("cls", [DualPathDenoiser, DualPathDenoiserStream])
def test_untrained_models_apply_the_mmse_gain_and_keep_the_noisy_phase(cls):
    noisy, _ = mixture()
    model = cls(channels=8, bin_channels=4, blocks=1).eval()
    if cls is DualPathDenoiser:
        spec = model.transform(noisy)
        with torch.no_grad():
            out, _ = model.enhance_spectrum(spec)
    else:
        from neuraudio.stream.stft import stft

        spec = stft(noisy, model.n_fft, model.hop, model.window)
        with torch.no_grad():
            out, _ = model.enhance_frames(spec, model.init_frame_state((1,), noisy.device))
    gain = mmse_prior(spec, init_mmse_state((1,), spec.shape[-2]), model.window_frames)
    loud = spec.abs() > 1e-3 * spec.abs().max()
    assert torch.allclose(out.abs()[loud], (gain * spec.abs())[loud], rtol=1e-3)
    assert torch.allclose(out[loud] / out.abs()[loud], spec[loud] / spec.abs()[loud], atol=1e-4)


def test_streaming_dual_path_streams_like_offline_for_every_block_pattern():
    model = scramble(DualPathDenoiserStream(channels=8, bin_channels=4), scale=0.2).eval()
    noisy, _ = mixture(1.0)
    assert model.latency == 160  # 10 ms at 16 kHz, fed whole hops
    assert_stream_matches_offline(model, noisy)


@pytest.mark.parametrize("cls", [DualPathDenoiser, DualPathDenoiserStream])
def test_a_batch_gives_each_clip_what_it_gives_alone(cls):
    model = scramble(cls(channels=8, bin_channels=4)).eval()
    a, _ = mixture(1.0, seed=1)
    b, _ = mixture(1.0, snr_db=15.0, seed=2)
    with torch.no_grad():
        both = model.process(torch.stack([a, b]))
        alone = torch.stack([model.process(a), model.process(b)])
    assert torch.allclose(both, alone, atol=1e-5)


@pytest.mark.parametrize("bins,band", [(161, 4), (257, 4), (160, 4), (129, 8), (5, 4)])
def test_the_sub_band_layout_fits_any_bin_count(bins, band):
    """Bins that do not fill the last band are padded in and cut out again: every bin has its three outputs, the last
    one reacts to its own input, and the time GRUs' states hold one row per band."""
    torch.manual_seed(0)
    core = DualPathCore(bins, 0.5, channels=8, band=band, bin_channels=4, blocks=1)
    with torch.no_grad():
        core.out.weight.normal_()
        x = torch.randn(2, 3, bins, 6)
        heads, states = core.network(x, [None])
        assert heads.shape == (2, 3, bins, 3) and states[0].shape == (1, 2 * -(-bins // band), 8)
        y = x.clone()
        y[..., bins - 1, :] += 1.0  # the last bin only
        moved = (core.network(y, [None])[0] - heads).abs().amax(dim=(0, 1, 3))
    assert float(moved[-1]) > 0.1


def test_offline_dual_path_in_chunks_is_close_to_one_pass_and_refuses_a_cache():
    noisy, _ = mixture(6.0)
    whole = scramble(DualPathDenoiser(channels=8, bin_channels=4, chunk_seconds=60.0)).eval()
    chunked = DualPathDenoiser(channels=8, bin_channels=4, chunk_seconds=2.0, context_seconds=2.0).eval()
    chunked.load_state_dict(whole.state_dict())
    with torch.no_grad():
        a, b = whole.process(noisy), chunked.process(noisy)
    assert a.shape == b.shape == noisy.shape
    assert float(metrics.si_sdr(b, a)) >= 25.0  # the noise tracker and the GRUs restart two seconds before each chunk
    spec = whole.transform(noisy)[..., :10]
    with pytest.raises(ValueError, match="causal"):
        whole.core(spec, torch.ones(spec.shape), whole.core.init_cache(1))


def test_a_folder_round_trip_gives_the_same_numbers(tmp_path):
    from neuraudio.hub import load, save_folder

    model = scramble(DualPathDenoiserStream(channels=8, bin_channels=4)).eval()
    save_folder(model, tmp_path / "dp", name="dp", task="enhancement")
    again = load(tmp_path / "dp")
    noisy, _ = mixture(0.5)
    with torch.no_grad():
        assert torch.equal(again.process(noisy), model.process(noisy))
    with pytest.raises(ValueError, match="multiple of 4"):
        DualPathDenoiserStream(channels=6)


def test_a_tiny_dual_path_training_run_improves_validation_si_sdr():
    torch.manual_seed(0)
    module = EnhancementModule(DualPathDenoiserStream(channels=16, bin_channels=8),
                               optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3), complex_weight=0.3,
                               phase_weight=0.05)
    val = DataLoader(Pairs(4, seed=99), batch_size=4)
    before = validation_si_sdr(module, val)
    trainer = L.Trainer(max_steps=60, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, DataLoader(Pairs(60 * 8, seed=1), batch_size=8))
    after = validation_si_sdr(module, val)
    assert after >= before + 1.0, (before, after)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_streaming_dual_path_on_cuda_streams_like_offline():
    model = scramble(DualPathDenoiserStream(channels=8, bin_channels=4)).eval().cuda()
    noisy, _ = mixture(1.0)
    assert_stream_matches_offline(model, noisy.cuda())
