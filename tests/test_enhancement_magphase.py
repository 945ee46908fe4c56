"""The magnitude + phase denoisers: their classical start, streaming == offline, chunking, training, the metric
discriminator, and the reverberation of the training data."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from neuraudio import metrics
from neuraudio.datasets import augment
from neuraudio.enhancement.magphase import MagPhaseDenoiser, MagPhaseDenoiserStream, mmse_prior
from neuraudio.enhancement.mmse import init_mmse_state
from neuraudio.examples import noisy_melody
from neuraudio.stream.testing import assert_stream_matches_offline
from neuraudio.train.enhance import EnhancementModule

SR = 16000


def scramble(model, seed=0, scale=0.05):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.core.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return model


def mixture(seconds=2.0, snr_db=5.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    clean = noisy_melody(seconds, SR, noise_dbfs=-80.0)
    noise = torch.randn(clean.shape, generator=gen)
    noise = noise * (clean.pow(2).mean() / noise.pow(2).mean() / 10 ** (snr_db / 10)).sqrt()
    return clean + noise, clean


def test_untrained_models_apply_the_mmse_gain_and_keep_the_noisy_phase():
    noisy, _ = mixture()
    model = MagPhaseDenoiser(dim=32, layers=2).eval()
    spec = model.transform(noisy)
    with torch.no_grad():
        out, mask = model.enhance_spectrum(spec)
        gain = mmse_prior(spec, init_mmse_state((1,), spec.shape[-2]), model.window_frames)
    loud = spec.abs() > 1e-3 * spec.abs().max()
    assert torch.allclose(out.abs()[loud], (gain * spec.abs())[loud], rtol=1e-3)
    assert torch.allclose(torch.polar(torch.ones_like(out.abs()), out.angle())[loud],
                          torch.polar(torch.ones_like(spec.abs()), spec.angle())[loud], atol=1e-4)
    assert float(gain.min()) >= 10 ** (-25 / 20) - 1e-6 and float(gain.max()) <= 1.0


def test_the_phase_refiner_starts_as_no_change_and_learns_per_bin_rotations(tmp_path):
    """A folder without the per-bin phase refiner starts a model with one: the same output; the phase term's
    gradient reaches the refiner, and one step of it rotates bins by different amounts."""
    from neuraudio.hub import save_folder

    plain = scramble(MagPhaseDenoiser(dim=32, layers=2)).eval()
    save_folder(plain, tmp_path / "plain", name="plain", task="enhancement")
    module = EnhancementModule(MagPhaseDenoiser(dim=32, layers=2, phase_channels=4), init_from=str(tmp_path / "plain"),
                               magnitude_weight=0.0, complex_weight=0.0, time_weight=0.0, consistency_weight=0.0,
                               phase_weight=1.0)
    refined = module.model.eval()
    noisy, clean = mixture(1.0)
    with torch.no_grad():
        assert torch.equal(refined.process(noisy), plain.process(noisy))
    terms = module.terms(refined.training_terms(noisy[None], clean[None]))
    terms["loss"].backward()
    last = refined.core.refiner[-1]
    assert float(last.weight.grad.abs().sum()) > 0
    with torch.no_grad():
        last.weight.sub_(10.0 * last.weight.grad)
        rotation = (refined.enhance_spectrum(refined.transform(noisy))[0].angle() - refined.transform(noisy).angle())
    rotation = torch.remainder(rotation + torch.pi, 2 * torch.pi) - torch.pi
    assert float(rotation.std(dim=-2).mean()) > 1e-3  # not one rotation for every bin of a frame
    with pytest.raises(ValueError, match="offline only"):
        MagPhaseDenoiserStream(dim=32, layers=2).core.__class__(17, 0.5, 32, 2, causal=True, phase_channels=4)
    narrow = MagPhaseDenoiser(dim=16, layers=2, phase_channels=4)
    with pytest.raises(ValueError, match="does not match"):
        narrow.load_narrower(plain.state_dict())


def test_streaming_denoiser_streams_like_offline_for_every_block_pattern():
    model = scramble(MagPhaseDenoiserStream(dim=32, layers=2)).eval()
    noisy, _ = mixture(1.0)
    assert model.latency == 160  # 10 ms at 16 kHz, fed whole hops
    assert_stream_matches_offline(model, noisy)


def test_the_mask_refiner_streams_like_offline_grows_from_a_folder_and_learns_per_bin_masks(tmp_path):
    """The per-bin mask refiner (along frequency only) keeps streaming == offline, starts from a folder without it as
    the same function, and the magnitude term's gradient reaches it and changes the mask bin by bin."""
    from neuraudio.hub import save_folder

    noisy, clean = mixture(1.0)
    assert_stream_matches_offline(scramble(MagPhaseDenoiserStream(dim=32, layers=2, mask_channels=6)).eval(), noisy)
    plain = scramble(MagPhaseDenoiserStream(dim=32, layers=2)).eval()
    save_folder(plain, tmp_path / "plain", name="plain", task="enhancement")
    module = EnhancementModule(MagPhaseDenoiserStream(dim=32, layers=2, mask_channels=6),
                               init_from=str(tmp_path / "plain"), complex_weight=0.0, time_weight=0.0,
                               consistency_weight=0.0, phase_weight=0.0)
    grown = module.model.eval()
    with torch.no_grad():
        assert torch.equal(grown.process(noisy), plain.process(noisy))
    out = grown.training_terms(noisy[None], clean[None])
    module.terms(out)["loss"].backward()
    last = grown.core.mask_refiner[-1]
    assert float(last.weight.grad.abs().sum()) > 0
    with torch.no_grad():
        last.weight.sub_(0.5 * last.weight.grad.sign())
        changed = grown.training_terms(noisy[None], clean[None])["mask"] / out["mask"].detach()
    assert float(changed.std(dim=-2).mean()) > 1e-3  # a different change for each bin of a frame
    with pytest.raises(ValueError, match="does not match"):
        MagPhaseDenoiserStream(dim=16, layers=2, mask_channels=6).load_narrower(plain.state_dict())


def test_offline_denoiser_in_chunks_matches_one_pass():
    noisy, _ = mixture(6.0)
    whole = scramble(MagPhaseDenoiser(dim=32, layers=2, chunk_seconds=60.0)).eval()
    chunked = MagPhaseDenoiser(dim=32, layers=2, chunk_seconds=2.0, context_seconds=2.0).eval()
    chunked.load_state_dict(whole.state_dict())
    with torch.no_grad():
        a, b = whole.process(noisy), chunked.process(noisy)
    assert a.shape == b.shape == noisy.shape
    assert float(metrics.si_sdr(b, a)) >= 25.0  # the noise tracker restarts two seconds before each chunk


def test_reverberate_aligns_the_early_target_with_the_dry_speech():
    x = noisy_melody(1.0, SR, noise_dbfs=-80.0)
    rir = torch.zeros(4000)
    rir[100] = 1.0  # direct path after 100 samples
    rir[100 + 400] = 0.5  # an early reflection (25 ms)
    rir[100 + 3000:] = 0.01 * torch.randn(900, generator=torch.Generator().manual_seed(0))  # a late tail
    wet, early = augment.reverberate(x, rir, SR)
    assert wet.shape == early.shape == x.shape
    assert abs(float(early.pow(2).mean() / x.pow(2).mean()) - 1.0) < 1e-4
    expected = x + 0.5 * torch.nn.functional.pad(x, (400, 0))[..., : x.shape[-1]]
    assert float(metrics.si_sdr(early, expected)) > 60.0  # the tail is not in the target
    assert float(metrics.si_sdr(wet, expected)) < 40.0


class Pairs(torch.utils.data.Dataset):
    """Harmonic 'speech' at random pitches in white noise at 0..10 dB: a task a small model learns in seconds."""

    def __init__(self, count, seed):
        self.count, self.seed = count, seed

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        gen = torch.Generator().manual_seed(self.seed * 1000 + i)
        t = torch.arange(SR // 2) / SR
        f0 = 120 + 150 * float(torch.rand((), generator=gen))
        envelope = torch.sin(torch.pi * t / t[-1]).clamp_min(0) ** 2
        clean = 0.2 * envelope * sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 12))
        noise = torch.randn(clean.shape, generator=gen)
        snr = 10 * float(torch.rand((), generator=gen))
        noise = noise * (clean.pow(2).mean() / noise.pow(2).mean() / 10 ** (snr / 10)).sqrt()
        return {"noisy": (clean + noise)[None], "clean": clean[None]}


def validation_si_sdr(module, loader):
    scores = []
    with torch.no_grad():
        for b in loader:
            out = module.model.training_terms(b["noisy"], b["clean"])
            scores.append(float(metrics.si_sdr(out["wave"], out["clean"])))
    return sum(scores) / len(scores)


def test_a_tiny_training_run_improves_validation_si_sdr():
    torch.manual_seed(0)
    model = MagPhaseDenoiserStream(dim=32, layers=2)
    module = EnhancementModule(model, optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3), complex_weight=0.3,
                               phase_weight=0.05)
    val = DataLoader(Pairs(4, seed=99), batch_size=4)
    before = validation_si_sdr(module, val)
    trainer = L.Trainer(max_steps=80, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, DataLoader(Pairs(80 * 8, seed=1), batch_size=8))
    after = validation_si_sdr(module, val)
    assert after >= before + 1.0, (before, after)


def test_metric_discriminator_step_updates_only_its_own_weights():
    pytest.importorskip("pesq")
    torch.manual_seed(0)
    model = MagPhaseDenoiserStream(dim=16, layers=1)
    module = EnhancementModule(model, metric_weight=0.05)
    d_opt = torch.optim.AdamW(module.discriminator.parameters(), lr=1e-3)
    batch = next(iter(DataLoader(Pairs(2, seed=3), batch_size=2)))
    enhancer_before = {k: v.clone() for k, v in model.state_dict().items()}
    disc_before = {k: v.clone() for k, v in module.discriminator.state_dict().items()}
    module.manual_backward = lambda loss: loss.backward()  # outside a Trainer
    module.clip_gradients = lambda *args, **kwargs: None
    out = model.training_terms(batch["noisy"], batch["clean"])
    loss = module.discriminator_step(out, d_opt)
    assert loss is not None and torch.isfinite(loss)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in enhancer_before.items())
    assert all(p.grad is None for p in model.parameters())
    moved = [k for k, v in disc_before.items() if not torch.equal(v, module.discriminator.state_dict()[k])]
    assert len(moved) >= len(disc_before) // 2


def test_decayed_epochs_start_the_schedule_where_a_run_left_it():
    from functools import partial

    def rates(**kwargs):
        module = EnhancementModule(MagPhaseDenoiserStream(dim=16, layers=1), lr_decay=0.9, metric_weight=0.05,
                                   optimizer=partial(torch.optim.AdamW, lr=1e-3), **kwargs)
        optimizers, schedulers = module.configure_optimizers()
        lrs = [o.param_groups[0]["lr"] for o in optimizers]
        for _ in range(3):
            optimizers[0].step()
            schedulers[0].step()
        return lrs, optimizers[0].param_groups[0]["lr"]

    (fresh, _), _ = rates()
    (start, disc), after = rates(decayed_epochs=10)
    assert fresh == pytest.approx(1e-3) and start == pytest.approx(1e-3 * 0.9 ** 10) and disc < 5e-4 * 0.9 ** 9
    assert after == pytest.approx(1e-3 * 0.9 ** 13)  # and it goes on decaying from there
    with pytest.raises(ValueError, match="decayed_epochs"):
        rates(decayed_epochs=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_streaming_denoiser_on_cuda_streams_like_offline():
    model = scramble(MagPhaseDenoiserStream(dim=32, layers=2)).cuda().eval()
    noisy, _ = mixture(0.5)
    errors = assert_stream_matches_offline(model, noisy, patterns=["hop", "3hop+7", "random"], device="cuda")
    assert max(errors.values()) <= 1e-4
