"""The amplitude/phase vocoders: streaming equals offline, priors, synthesize, the GAN training module."""

import copy

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from neuraudio.stream.stft import istft, make_window
from neuraudio.stream.testing import assert_stream_matches_offline
from neuraudio.train.gan import VocoderGANModule
from neuraudio.vocoding.apnet import APNet, APNetStream
from neuraudio.vocoding.griffin_lim import mel_to_magnitude
from neuraudio.vocoding.phase_prior import phase_vocoder_prior, rtisi_prior

SR = 16000
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def speechlike(seconds=0.5, seed=0):
    """A voiced buzz (f0 gliding 120 -> 180 Hz, 20 harmonics) with a formant-like tilt, plus a little noise."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    phase = 2 * torch.pi * torch.cumsum(120 + 60 * t / seconds, 0) / SR
    x = sum(torch.sin(k * phase) / k for k in range(1, 21))
    return (0.1 * x + 0.003 * torch.randn(t.shape, generator=gen))[None].float()


def randomized(model, std=0.02):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.normal_(0, std)
    return model.eval()


@pytest.mark.parametrize("refiner", ["frame", "spectral"])
def test_streaming_vocoder_streams_like_offline_for_every_block_pattern(refiner):
    model = randomized(APNetStream(dim=32, layers=2, phase_refiner=refiner, refiner_channels=8, refiner_layers=2))
    errors = assert_stream_matches_offline(model, speechlike(0.3))
    assert max(errors.values()) <= 1e-5
    assert model.latency == 512 - 128 and model.stream(160).latency == 512 - 1


def test_untrained_models_are_their_classical_priors():
    """Zero-initialised heads: the untrained streaming model is RTISI on the mel's pseudo-inverse amplitude."""
    model = APNetStream(dim=32, layers=1).eval()
    x = speechlike(0.4)
    mel = model.analyse(x)
    magnitude = torch.cat([mel_to_magnitude(mel[..., t : t + 1], model.inverse) for t in range(mel.shape[-1])], -1)
    phase = rtisi_prior(magnitude, make_window("hann", 512), 128, 4)
    expected = istft(torch.polar(magnitude.clamp_min(1e-5), phase), 512, 128, make_window("hann", 512))
    y = model.synthesize(mel)
    n = y.shape[-1] - 384
    assert torch.allclose(y[..., :n], expected[..., 384 : 384 + n], atol=1e-5)


def test_rtisi_and_phase_vocoder_priors_carry_state_across_calls():
    gen = torch.Generator().manual_seed(1)
    magnitude = torch.rand(2, 257, 12, generator=gen)
    window = make_window("hann", 512)
    whole = rtisi_prior(magnitude, window, 128, 3)
    tail = torch.zeros(2, 384)
    parts = torch.cat([rtisi_prior(magnitude[..., i : i + 5], window, 128, 3, state=tail) for i in (0, 5, 10)], -1)
    assert torch.equal(whole, parts)
    psi = torch.zeros(2, 257, dtype=torch.float64)
    pv = torch.cat([phase_vocoder_prior(magnitude[..., i : i + 4], 512, 128, psi) for i in (0, 4, 8)], -1)
    assert torch.allclose(pv, phase_vocoder_prior(magnitude, 512, 128), atol=1e-6)


def test_phase_vocoder_prior_advances_a_stationary_tone_at_its_frequency():
    """A 1 kHz tone (bin 32 at n_fft 512): the prior's peak phase advances by 2 pi f hop / sr per frame."""
    t = torch.arange(SR) / SR
    spec = torch.stft(torch.sin(2 * torch.pi * 1000 * t), 512, 128, window=torch.hann_window(512),
                      return_complex=True)
    phase = phase_vocoder_prior(spec.abs(), 512, 128)
    step = torch.remainder(torch.diff(phase[32, 5:40]) - 2 * torch.pi * 1000 * 128 / SR + torch.pi,
                           2 * torch.pi) - torch.pi
    assert step.abs().max() < 1e-3


def test_synthesize_from_an_external_mel_equals_the_processor_path():
    model = randomized(APNetStream(dim=32, layers=2))
    x = speechlike(0.32)  # 40 whole hops: every sample but the last latency's is complete in both
    y = model.process(x)
    z = model.synthesize(model.analyse(x))
    n = x.shape[-1] - model.latency
    assert torch.allclose(y[..., :n], z[..., :n], atol=1e-6)
    with pytest.raises(ValueError, match="mel has 64 bands but this vocoder uses 80"):
        model.synthesize(torch.zeros(1, 64, 10))
    offline = APNet(dim=32, layers=1, prior_iters=4, chunk_seconds=0.5)
    with pytest.raises(ValueError, match="mel has 64 bands"):
        offline.synthesize(torch.zeros(1, 64, 10))
    mel = offline.analyse(x)
    assert mel.shape == (1, 80, x.shape[-1] // 128 + 1)
    assert offline.synthesize(mel, length=x.shape[-1]).shape == x.shape


def test_offline_vocoder_untrained_resynthesizes_speechlike_audio_closely():
    """The untrained offline model is Griffin-Lim from a phase-vocoder start: its output's magnitude spectrum
    matches the input's (MR-STFT well under that of noise)."""
    from neuraudio.metrics import mrstft

    model = APNet(dim=32, layers=1, prior_iters=16, chunk_seconds=0.5).eval()
    x = speechlike(1.0)
    y = model.process(x)
    assert float(mrstft(y, x)) < 0.5 * float(mrstft(0.1 * torch.randn_like(x), x))


class FixedBatch(torch.utils.data.Dataset):
    def __init__(self, n=4):
        self.items = [speechlike(0.256, seed=i) for i in range(n)]

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"audio": self.items[i]}


class Losses(L.Callback):
    def __init__(self):
        self.values = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.values.append(float(trainer.callback_metrics["train/loss"]))


def _trainer(steps, callbacks=()):
    return L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                     callbacks=list(callbacks))


def test_gan_step_moves_both_optimizers_and_the_generator_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = APNetStream(dim=32, layers=1, prior="none")
    module = VocoderGANModule(model, adversarial_from_step=0, discriminator_width=4)
    generator = copy.deepcopy(module.model.state_dict())
    loader = DataLoader(FixedBatch(), batch_size=4)
    _trainer(1).fit(module, loader)
    discriminator = copy.deepcopy(module.discriminators.state_dict())
    assert any(not torch.equal(v, module.model.state_dict()[k]) for k, v in generator.items())
    _trainer(2).fit(module, loader)  # a new trainer: one more step
    assert any(not torch.equal(v, module.discriminators.state_dict()[k]) for k, v in discriminator.items())
    plain = VocoderGANModule(APNetStream(dim=32, layers=1, prior="none"),
                             generator_optimizer=lambda p: torch.optim.Adam(p, lr=2e-3))
    losses = Losses()
    _trainer(50, [losses]).fit(plain, loader)
    first, last = sum(losses.values[:5]) / 5, sum(losses.values[-5:]) / 5
    assert last < 0.9 * first, losses.values


@cuda
def test_streaming_vocoder_on_cuda_streams_like_offline():
    model = randomized(APNetStream(dim=32, layers=2, phase_refiner="spectral")).cuda()
    errors = assert_stream_matches_offline(model, speechlike(0.3), patterns=["hop", "3hop+7", "random"],
                                           device="cuda")
    assert max(errors.values()) <= 1e-4
