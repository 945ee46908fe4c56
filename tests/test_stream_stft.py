import math

import pytest
import torch

from neuraudio.stream import spectral
from neuraudio.stream.framing import StreamingISTFT, StreamingSTFT
from neuraudio.stream.stft import istft, make_window, ola_norm, reanalyse, stft
from neuraudio.stream.testing import block_lengths

WINDOWS = ["hann", "sqrt-hann", "vorbis"]


@pytest.mark.parametrize("window", WINDOWS + ["tensor"])
@pytest.mark.parametrize("n_fft,hop,win_length", [(512, 128, None), (1024, 256, None), (512, 128, 400), (256, 64, 255)])
def test_stft_equals_torch_stft_on_left_padded_signal(window, n_fft, hop, win_length):
    x = torch.randn(2, 5000)
    if window == "tensor":
        window = torch.kaiser_window(win_length or n_fft, periodic=True, beta=8.0)
    ours = stft(x, n_fft, hop, window, win_length)
    # torch.stft centres a short window itself: this also checks our centring.
    short = make_window(window, win_length or n_fft) if isinstance(window, str) else window
    ref = torch.stft(torch.nn.functional.pad(x, (n_fft - hop, 0)), n_fft, hop, win_length=win_length or n_fft,
                     window=short, center=False, return_complex=True)
    assert ours.shape == (2, n_fft // 2 + 1, 5000 // hop)
    assert (ours - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_stft_matches_librosa_reference():
    librosa = pytest.importorskip("librosa")
    x = torch.randn(4096)
    ours = stft(x, 512, 128)
    padded = torch.nn.functional.pad(x, (384, 0)).numpy()
    ref = librosa.stft(padded, n_fft=512, hop_length=128, window="hann", center=False)
    assert ours.shape == ref.shape
    assert abs(ours.numpy() - ref).max() <= 1e-4


def test_short_window_is_centred_in_frame():
    win = make_window("hann", 512, 300)
    nz = torch.nonzero(win).flatten()
    assert win.shape == (512,) and nz.min() == 107 and nz.max() == 405  # 106 zeros each side; hann[0] = 0


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("n_fft,hop", [(1024, 256), (512, 256), (768, 256), (512, 100)])
def test_identity_reproduces_input_delayed_by_n_fft_minus_hop(window, n_fft, hop):
    x = torch.randn(3, 9000)
    y = istft(stft(x, n_fft, hop, window), n_fft, hop, window)
    delay = n_fft - hop
    assert y.shape[-1] == (9000 // hop) * hop
    assert (y[..., delay:] - x[..., : y.shape[-1] - delay]).abs().max() <= 1e-5


def test_hann_half_overlap_norm_is_not_constant_and_is_used():
    norm = ola_norm(make_window("hann", 512), make_window("hann", 512), 256)
    assert norm.min() == pytest.approx(0.5, abs=1e-6) and norm.max() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("window,n_fft,hop", [("hann", 512, 512), ("sqrt-hann", 256, 256), ("hann", 256, 300)])
def test_nola_violations_are_refused(window, n_fft, hop):
    with pytest.raises(ValueError, match="NOLA|hop must be"):
        istft(torch.zeros(1, n_fft // 2 + 1, 4, dtype=torch.complex64), n_fft, hop, window)


def test_bad_window_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown window"):
        make_window("hamming-ish", 512)
    with pytest.raises(ValueError, match="win_length"):
        make_window("hann", 256, 512)


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("pattern", ["1", "hop-1", "hop", "3hop+7", "random"])
def test_streaming_stft_and_istft_equal_offline(window, pattern):
    n_fft, hop = 256, 64
    x = torch.randn(2, 3000)
    analysis = StreamingSTFT(n_fft, hop, window, lead=(2,), max_block=3 * hop + 7)
    synthesis = StreamingISTFT(n_fft, hop, window, lead=(2,))
    specs, samples, pos = [], [], 0
    for n in block_lengths(pattern, hop, 3 * hop + 7, 3000, seed=3):
        spec = analysis.process(x[:, pos : pos + n])
        pos += n
        specs.append(spec)
        samples.append(synthesis.process(spec))
    streamed = torch.cat(specs, dim=-1)
    offline = stft(x, n_fft, hop, window)
    assert streamed.shape == offline.shape
    assert (streamed - offline).abs().max() <= 1e-5 * max(1.0, float(offline.abs().max()))
    assert (torch.cat(samples, -1) - istft(offline, n_fft, hop, window)).abs().max() <= 1e-5


def test_streaming_stft_reset_returns_to_silence():
    analysis = StreamingSTFT(128, 32, lead=(1,), max_block=64)
    x = torch.randn(1, 64)
    first = analysis.process(x)
    analysis.process(torch.randn(1, 50))
    analysis.reset()
    assert torch.equal(analysis.process(x), first)


def test_compression_round_trip_and_phase_kept():
    spec = torch.randn(2, 129, 10, dtype=torch.complex64)
    c = spectral.compress(spec, 0.3)
    assert torch.allclose(c.abs(), spec.abs() ** 0.3, rtol=1e-4)
    assert spectral.anti_wrap(c.angle() - spec.angle()).max() <= 1e-5
    assert torch.allclose(spectral.decompress(c, 0.3), spec, rtol=1e-3, atol=1e-5)


def test_anti_wrapping_phase_distances():
    phase = (torch.rand(1, 65, 20) * 2 - 1) * math.pi
    shifted = phase + 2 * math.pi * torch.randint(-3, 4, phase.shape)
    zero = spectral.phase_distances(shifted, phase)
    assert all(float(v) <= 1e-4 for v in zero.values())
    off = spectral.phase_distances(phase + 0.5, phase)
    assert float(off["ip"]) == pytest.approx(0.5, abs=1e-5)
    assert float(off["gd"]) <= 1e-5 and float(off["iaf"]) <= 1e-5  # a constant offset has no GD/IF error
    assert float(spectral.anti_wrap(torch.tensor(3 * math.pi))) == pytest.approx(math.pi, abs=1e-5)
    w = spectral.wrap(torch.linspace(-20, 20, 1001))
    assert w.min() >= -math.pi and w.max() < math.pi


def test_log_amplitude_floors_silence():
    spec = torch.zeros(1, 5, 2, dtype=torch.complex64)
    assert torch.allclose(spectral.log_amplitude(spec, eps=1e-5), torch.full((1, 5, 2), math.log(1e-5)))


def test_magnitude_phase_and_real_imag_round_trip():
    from neuraudio.stream import spectral

    spec = torch.randn(3, 65, 10, dtype=torch.complex64)
    real, imag = spectral.to_real_imag(spec.abs(), spec.angle())
    assert torch.allclose(torch.complex(real, imag), spec, atol=1e-6)
    magnitude, phase = spectral.to_magnitude_phase(spec.real, spec.imag)
    assert torch.allclose(magnitude, spec.abs(), atol=1e-6) and torch.allclose(phase, spec.angle(), atol=1e-6)
    assert torch.allclose(spectral.polar(magnitude, phase), spec, atol=1e-5)


@pytest.mark.parametrize("n_fft,hop,window", [(320, 160, "sqrt-hann"), (512, 128, "hann"), (400, 100, "hann")])
def test_reanalyse_lines_the_resynthesis_up_with_the_frames_it_came_from(n_fft, hop, window):
    """A spectrum a signal has is consistent: reanalysing its resynthesis gives it back frame for frame (the
    consistency loss of the causal models compares these frames; ``stft(istft(S))`` is shifted by the delay)."""
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    spec = stft(x, n_fft, hop, window)
    rebuilt = reanalyse(istft(spec, n_fft, hop, window), n_fft, hop, window)
    keep = spec.shape[-1] - math.ceil((n_fft - hop) / hop)
    assert rebuilt.shape[-1] == keep
    assert float((rebuilt - spec[..., :keep]).abs().max() / spec.abs().max()) < 1e-4
    shifted = stft(istft(spec, n_fft, hop, window), n_fft, hop, window)
    assert float((shifted[..., :keep] - spec[..., :keep]).abs().max() / spec.abs().max()) > 0.1
