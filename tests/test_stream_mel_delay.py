"""stream/mel.py against librosa, stream/delay.py on known delays, and the STFT module against torch.stft."""


import numpy as np
import pytest
import soxr
import torch

from neuraudio.stream.delay import DelayTracker, estimate_delay
from neuraudio.stream.mel import MelSpectrogram, hz_to_mel, mel_filterbank, mel_to_hz
from neuraudio.stream.stft import STFT, istft, stft

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax,htk", [(22050, 1024, 80, 0.0, None, False),
                                                           (16000, 512, 64, 20.0, 7600.0, False),
                                                           (24000, 1024, 100, 0.0, 12000.0, True)])
def test_mel_filterbank_equals_librosa(sr, n_fft, n_mels, fmin, fmax, htk):
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk).numpy()
    theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    assert np.abs(ours - theirs).max() <= 1e-6 * np.abs(theirs).max()
    hz = torch.tensor([0.0, 440.0, 1000.0, 5000.0])
    assert torch.allclose(mel_to_hz(hz_to_mel(hz, htk), htk), hz.double(), atol=1e-6)


def test_mel_spectrogram_equals_librosa():
    x = torch.randn(22050, generator=torch.Generator().manual_seed(0))
    ours = MelSpectrogram(22050, 1024, 256, 80, log=False)(x).numpy()
    theirs = librosa.feature.melspectrogram(y=x.numpy(), sr=22050, n_fft=1024, hop_length=256, n_mels=80, power=1.0,
                                            pad_mode="reflect")
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()
    with pytest.raises(ValueError, match="fmin < fmax"):
        mel_filterbank(16000, 512, 40, fmin=9000.0)


@pytest.mark.parametrize("n_fft,hop", [(1024, 256), (400, 100)])
def test_centred_stft_module_equals_torch(n_fft, hop):
    x = torch.randn(2, 3, 8000)
    module = STFT(n_fft, hop, center=True)
    theirs = torch.stft(x.reshape(-1, 8000), n_fft, hop, window=torch.hann_window(n_fft), center=True,
                        return_complex=True).reshape(2, 3, n_fft // 2 + 1, -1)
    ours = module(x)
    assert ours.shape == theirs.shape and (ours - theirs).abs().max() <= 1e-4
    back = module.inverse(ours, length=8000)
    assert (back - x).abs().max() <= 1e-5 and module.latency == 0
    causal = STFT(n_fft, hop)
    assert torch.equal(causal(x), stft(x, n_fft, hop)) and torch.equal(causal.inverse(causal(x)), istft(stft(x, n_fft, hop), n_fft, hop))
    assert causal.latency == n_fft - hop


def test_right_aligned_short_window_has_less_delay():
    x = torch.randn(1, 8000)
    module = STFT(512, 128, win_length=256, align="right")
    y = module.inverse(module(x))
    assert module.latency == 127  # the hann window's first sample is 0: its support starts one sample later
    lat = module.latency
    assert (y[..., lat:] - x[..., : y.shape[-1] - lat]).abs().max() <= 1e-5
    assert lat < STFT(512, 128, win_length=256).latency == 384


def test_gcc_phat_finds_a_delay_in_coloured_noise_and_the_tracker_follows_drift():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32000, generator=gen)
    x = torch.nn.functional.conv1d(x.view(1, 1, -1), torch.ones(1, 1, 8) / 8, padding=7).view(-1)[:32000]
    y = torch.cat([torch.zeros(1234), 0.3 * x])[:32000] + 0.01 * torch.randn(32000, generator=gen)
    lag, inverted, peak = estimate_delay(x, y, 3200)
    assert (lag, inverted) == (1234, False) and peak > 0.5
    assert estimate_delay(x, -y, 3200, phat=False)[:2] == (1234, True)
    assert estimate_delay(x, torch.randn(32000, generator=gen), 3200)[2] < 0.2  # unrelated: a low peak
    n = 16000 * 40  # the microphone's clock 100 ppm slow: the delay grows by 64 samples over 40 s
    x = torch.randn(n, generator=gen)
    slow = torch.from_numpy(soxr.resample(x.numpy(), 16000, 16000 * (1 + 1e-4))).float()
    y = torch.cat([torch.zeros(800), slow])[:n]
    tracker, at_once = DelayTracker(3200), DelayTracker(3200, spread=False)
    spread_delays, delays = [], []
    for i in range(0, n, 160):
        spread_delays.append(tracker.update(x[i : i + 160], y[i : i + 160]))
        delays.append(at_once.update(x[i : i + 160], y[i : i + 160]))
    assert abs(tracker.delay - (800 + 1e-4 * n)) <= 3
    assert spread_delays[2:] == delays[:-2]  # the same estimates, each two calls later


def test_a_spread_tracker_runs_one_fft_per_call_unless_it_falls_behind(monkeypatch):
    calls = []
    for name in ("rfft", "irfft"):  # the tracker's FFTs are NumPy's
        real = getattr(np.fft, name)
        monkeypatch.setattr(np.fft, name, lambda *a, _real=real, **k: calls.append(1) or _real(*a, **k))
    tracker = DelayTracker(800, hop=1600)
    x = torch.randn(16320, generator=torch.Generator().manual_seed(1))
    per_call = []
    for i in range(0, 16320, 160):  # ten updates and the two calls that finish the last
        calls.clear()
        tracker.update(x[i : i + 160], x[i : i + 160])
        per_call.append(len(calls))
    assert max(per_call) == 1 and sum(per_call) == 3 * 10 and tracker.delay == 0
    calls.clear()
    tracker.update(x[:3200], x[:3200])  # two hops at once: both updates now
    assert len(calls) == 6


def test_the_tracker_holds_the_last_window_in_order_whatever_the_block_sizes():
    """The tracker's signals are the last ``window`` samples, for blocks shorter, longer and equal to the window,
    in float32 whatever came in, and the blocks it was given may be reused by the caller at once (an engine's
    buffers). (Rings written in place were tried instead of concatenating and were slower per 160-sample call in
    an ad hoc timing; the blocks are now concatenated once per update.)"""
    tracker = DelayTracker(100, window=256, hop=64)
    gen = torch.Generator().manual_seed(3)
    fed_ref, fed_mic = torch.zeros(256, dtype=torch.float64), torch.zeros(256, dtype=torch.float64)
    reused = torch.zeros(600)  # the caller's buffer, overwritten after each call
    for size in (1, 7, 100, 255, 256, 300, 3, 600, 64, 64):
        ref, mic = torch.randn(size, generator=gen, dtype=torch.float64), torch.randn(size, generator=gen)
        reused[:size] = mic
        tracker.update(ref, reused[:size])
        reused.fill_(7.0)
        fed_ref, fed_mic = torch.cat([fed_ref, ref])[-256:], torch.cat([fed_mic, mic.double()])[-256:]
        assert tracker.ref.dtype == torch.float32 and torch.equal(tracker.ref, fed_ref.float())
        assert torch.equal(tracker.mic, fed_mic.float())
