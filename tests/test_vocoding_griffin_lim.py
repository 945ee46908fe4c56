import math

import torch

import neuraudio
from neuraudio.stream.stft import STFT
from neuraudio.stream.testing import assert_stream_matches_offline
from neuraudio.vocoding import GriffinLim, griffin_lim, mel_to_magnitude
from neuraudio.stream.mel import mel_filterbank

SR = 16000


def vibrato(seconds=1.0, f0=180.0, depth=0.05):
    t = torch.arange(int(seconds * SR)) / SR
    phase = 2 * math.pi * f0 * (t + depth / (2 * math.pi * 3) * (1 - torch.cos(2 * math.pi * 3 * t)))
    return (0.3 * sum(torch.sin(k * phase) / k for k in range(1, 8)))[None]


def convergence(y, magnitude, transform):
    return float((transform(y).abs() - magnitude).norm() / magnitude.norm())


def test_griffin_lim_converges_towards_the_magnitude():
    x = vibrato()
    transform = STFT(512, 128, center=True)
    magnitude = transform(x).abs()
    errors = [convergence(griffin_lim(magnitude, transform, n, length=x.shape[-1]), magnitude, transform)
              for n in (0, 8, 64)]
    assert errors[0] > errors[1] > errors[2] and errors[2] <= 0.12, errors
    slow = convergence(griffin_lim(magnitude, transform, 64, momentum=0.0, length=x.shape[-1]), magnitude, transform)
    assert errors[2] < slow  # the momentum of fast Griffin-Lim helps


def test_frame_major_iterations_equal_the_textbook_loop():
    """The fast path (frame-major layout, envelope computed once) is the same algorithm as the plain loop through
    ``STFT`` and its inverse, for batched input, with and without an explicit length."""
    from neuraudio.vocoding.griffin_lim import fast_griffin_lim

    x = torch.cat([vibrato(0.5), vibrato(0.5, f0=230.0)])
    transform = STFT(512, 128, center=True)
    magnitude = transform(x).abs()
    start = torch.polar(torch.ones_like(magnitude), torch.rand(magnitude.shape, generator=torch.Generator().manual_seed(0)) * 6)
    for n_iter, length in ((1, x.shape[-1]), (4, x.shape[-1]), (4, None)):
        angles, previous = start.clone(), torch.zeros_like(start)
        for _ in range(n_iter):
            rebuilt = transform(transform.inverse(magnitude * angles, length=length))
            accelerated = rebuilt + 0.99 * (rebuilt - previous)
            previous = rebuilt
            angles = accelerated / accelerated.abs().clamp_min(1e-16)
        fast = fast_griffin_lim(magnitude, start, transform, n_iter, 0.99, length)
        weight = magnitude / magnitude.max()  # phases of near-silent bins are ill-conditioned
        assert float(((fast - angles).abs() * weight).max()) <= 1e-4, n_iter


def test_mel_pseudo_inverse_is_non_negative_and_keeps_the_band_energy():
    filters = mel_filterbank(SR, 512, 40)
    magnitude = torch.rand(257, 20)
    back = mel_to_magnitude(torch.log(filters @ magnitude), torch.linalg.pinv(filters))
    assert back.min() >= 0 and torch.allclose(filters @ back, filters @ magnitude, rtol=0.2, atol=1e-3)


def test_vocoder_keeps_the_pitch_and_streams_like_offline():
    model = GriffinLim(SR, 512, 128, n_mels=64, fmax=None, n_iter=16, context_frames=8, chunk_seconds=0.25)
    x = vibrato(1.0, 200.0, depth=0.0)
    y = model.process(x)
    spectrum = torch.fft.rfft(y[0, 2000:14000]).abs()
    peak_hz = float(spectrum.argmax()) * SR / 12000
    assert abs(peak_hz - 200.0) <= 200.0 * 0.01
    errors = assert_stream_matches_offline(model, x[:, : 3 * model.hop], patterns=["3hop+7", "random"],
                                           block_size=3 * model.hop + 7)
    assert max(errors.values()) <= 1e-5
    mel = model.mel(x)
    assert model.synthesize(mel).shape == (1, (mel.shape[-1] - 1) * 128)


def test_builtin_griffin_lim_is_a_vocoder():
    model = neuraudio.load("griffin-lim")
    assert model.task == "vocoder" and model.sample_rate == 22050 and model.mel.n_mels == 80
