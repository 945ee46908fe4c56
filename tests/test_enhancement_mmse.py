import math

import pytest
import torch

import neuraudio
from neuraudio import metrics
from neuraudio.enhancement import LogMMSE, exp1
from neuraudio.stream.testing import assert_stream_matches_offline

SR = 16000


def voiced(seconds=4.0, seed=0):
    """Speech-like: harmonics of a gliding f0 under a syllable-rate envelope with pauses."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    f0 = 140 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SR
    tone = sum(torch.sin(k * phase) / k for k in range(1, 15))
    envelope = (torch.sin(2 * math.pi * 2.5 * t).clamp_min(0) ** 0.5) * (torch.rand(1, generator=gen) * 0 + 1)
    return (0.1 * tone * envelope)[None]


def test_exp1_against_scipy():
    special = pytest.importorskip("scipy.special")
    x = torch.logspace(-3, math.log10(20), 50)
    ratio = exp1(x) / torch.from_numpy(special.exp1(x.double().numpy()))
    assert float((ratio - 1).abs().max()) <= 0.025


def test_denoiser_improves_speech_in_stationary_noise():
    clean = voiced()
    noise = torch.randn(1, clean.shape[-1], generator=torch.Generator().manual_seed(1))
    model = LogMMSE(SR)
    for snr in (0.0, 10.0):  # measured: 0.0 -> 3.8 dB and 10.0 -> 13.9 dB
        noisy = clean + noise * (clean.pow(2).mean() / (noise.pow(2).mean() * 10 ** (snr / 10))).sqrt()
        y = model.process(noisy)
        before, after = float(metrics.si_sdr(noisy, clean)), float(metrics.si_sdr(y, clean))
        assert after >= before + 3.0, (snr, before, after)


def test_noise_alone_is_attenuated_within_the_floor():
    """White noise alone: log-MMSE leaves bins of low instantaneous power near a constant amplitude, so the drop
    saturates (measured 6.5 dB at a 10 dB floor, 8.5 dB from a 20 dB floor on); the floor caps it, and 0 dB passes
    the noise unchanged."""
    noise = 0.05 * torch.randn(1, 4 * SR, generator=torch.Generator().manual_seed(2))
    model = LogMMSE(SR)
    drops = {}
    for floor_db in (0.0, 10.0, 30.0):
        y = model.process(noise, reduction_db=floor_db)[:, SR:]
        drops[floor_db] = float(20 * torch.log10(noise[:, SR:].std() / y.std()))
    assert abs(drops[0.0]) <= 0.1 and 5.0 <= drops[10.0] <= 10.5 and drops[30.0] >= drops[10.0] + 1.0, drops


def test_denoiser_streams_like_offline_with_knob_changes():
    x = voiced(1.0) + 0.02 * torch.randn(1, SR, generator=torch.Generator().manual_seed(3))
    model = LogMMSE(SR)
    errors = assert_stream_matches_offline(model, x, patterns=["1", "hop", "3hop+7", "random"],
                                           changes=[(5000, {"reduction_db": 35.0})])
    assert max(errors.values()) <= 1e-5
    assert neuraudio.load("denoise-mmse").stream(block_size=128, block_multiple=128).latency == 384
