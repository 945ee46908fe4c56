import math

import pytest
import torch

from neuraudio import metrics
from neuraudio.train import losses


def test_esr_hand_computed():
    y = torch.tensor([[1.0, 2.0]])
    y_hat = torch.tensor([[1.0, 1.0]])
    assert float(losses.esr(y_hat, y, pre_emphasis_coefficient=None)) == pytest.approx(1 / 5, rel=1e-6)
    # pre-emphasised: H y = [1, 1.15], H y^ = [1, 0.15] -> error [0, 1] -> 1 / (1 + 1.3225)
    assert float(losses.esr(y_hat, y)) == pytest.approx(1 / 2.3225, rel=1e-6)
    assert float(losses.esr(0.5 * y, y)) == pytest.approx(0.25, rel=1e-6)


def test_esr_and_dc_respect_the_mask():
    y = torch.ones(1, 1, 8)
    y_hat = y.clone()
    y_hat[..., :4] = 100.0  # a start-up transient
    mask = torch.ones(1, 1, 8)
    mask[..., :4] = 0.0
    assert float(losses.esr(y_hat, y, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.dc_loss(y_hat, y, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.esr(y_hat, y)) > 100


def test_dc_loss_hand_computed():
    y = torch.ones(1, 4)
    assert float(losses.dc_loss(torch.full((1, 4), 0.5), y)) == pytest.approx(0.25, rel=1e-6)


def test_si_sdr_hand_computed():
    y = torch.tensor([[1.0, 0.0]])
    assert float(losses.si_sdr(torch.tensor([[1.0, 1.0]]), y)) == pytest.approx(0.0, abs=1e-5)
    assert float(losses.si_sdr(torch.tensor([[3.0, 0.3]]), y)) == pytest.approx(20.0, abs=1e-4)  # 9 / 0.09
    assert float(losses.si_sdr_loss(torch.tensor([[1.0, 1.0]]), y)) == pytest.approx(0.0, abs=1e-5)


def test_mrstft_zero_for_identical_and_known_for_half_scale():
    x = 0.1 * torch.randn(1, 16000)
    assert float(losses.mrstft(x, x)) == pytest.approx(0.0, abs=1e-6)
    # each resolution: spectral convergence 0.5 + log-magnitude L1 ln 2
    assert float(losses.mrstft(0.5 * x, x)) == pytest.approx(3 * (0.5 + math.log(2)), rel=1e-3)


def test_spectral_losses_hand_computed():
    ones = torch.ones(1, 5, 3, dtype=torch.complex64)
    assert float(losses.compressed_magnitude_l1(ones, 2 * ones)) == pytest.approx(2**0.3 - 1, rel=1e-5)
    a = 4 * torch.ones(1, 5, 3, dtype=torch.complex64)
    assert float(losses.complex_spectrum_loss(a, -a)) == pytest.approx(4 * 4**0.6, rel=1e-5)
    assert float(losses.complex_spectrum_loss(a, a)) == 0.0
    rotated = ones * torch.exp(torch.tensor(1j * math.pi / 2))
    phase = losses.phase_losses(rotated, ones)
    assert float(phase["ip"]) == pytest.approx(math.pi / 2, abs=1e-5)
    assert float(phase["gd"]) == pytest.approx(0.0, abs=1e-5) and float(phase["iaf"]) == pytest.approx(0.0, abs=1e-5)


def test_losses_have_gradients():
    y = torch.randn(2, 1, 4000)
    y_hat = torch.randn(2, 1, 4000, requires_grad=True)
    total = losses.esr(y_hat, y) + losses.dc_loss(y_hat, y) + losses.mrstft(y_hat, y) + losses.si_sdr_loss(y_hat, y)
    total.backward()
    assert torch.isfinite(y_hat.grad).all() and y_hat.grad.abs().sum() > 0


def test_losses_are_the_metrics():
    """One definition of ESR, MR-STFT and SI-SDR for training, evaluation and capture checks."""
    assert losses.esr is metrics.esr and losses.mrstft is metrics.mrstft and losses.si_sdr is metrics.si_sdr


def test_metrics_hand_computed():
    y = torch.randn(1, 8000)
    assert float(metrics.sdr(0.9 * y, y)) == pytest.approx(20.0, abs=1e-3)
    assert float(metrics.erle(y, 0.1 * y)) == pytest.approx(20.0, abs=1e-3)
    assert float(metrics.esr(0.5 * y, y)) == pytest.approx(0.25, rel=1e-5)
    assert float(metrics.si_sdr(2.0 * y, y)) > 60.0
    with pytest.raises(ValueError, match="8000 or 16000"):
        metrics.pesq(y, y, 44100)


def test_speech_metrics_through_eval_extra():
    pytest.importorskip("pystoi")
    pytest.importorskip("pesq")
    t = torch.arange(3 * 16000) / 16000
    # a crude voiced signal: harmonics of 120 Hz with a syllable-rate envelope
    voiced = sum(torch.sin(2 * math.pi * 120 * k * t) / k for k in range(1, 20))
    speechy = (voiced * (0.5 + 0.5 * torch.sin(2 * math.pi * 4 * t)).clamp_min(0) * 0.1)[None]
    assert metrics.stoi(speechy, speechy, 16000) == pytest.approx(1.0, abs=1e-3)
    noisy = speechy + 0.05 * torch.randn_like(speechy)
    assert metrics.stoi(noisy, speechy, 16000) < 0.95
    assert metrics.pesq(speechy, speechy, 16000) > metrics.pesq(noisy, speechy, 16000)


def test_per_item_esr_weighs_quiet_items_like_loud_ones():
    from neuraudio.train import losses

    torch.manual_seed(0)
    target = torch.randn(2, 1, 1000)
    target[1] *= 0.1                       # 20 dB quieter, above the -60 dBFS floor
    estimate = target * 1.1                 # the same 10 % error on both: each item's ESR is 0.01
    assert float(losses.esr(estimate, target, None, None, per_item=True)) == pytest.approx(0.01, rel=1e-3)
    estimate = target.clone()
    estimate[1] *= 2.0                      # a 100 % error on the quiet item only
    pooled = float(losses.esr(estimate, target, None, None))
    per_item = float(losses.esr(estimate, target, None, None, per_item=True))
    assert pooled == pytest.approx(0.01, rel=0.1) and per_item == pytest.approx(0.5, rel=1e-3)
