import hashlib

import numpy as np
import pytest
import soundfile as sf

from neuraudio.data.common import level_to, rms_db, tilt
from neuraudio.data.sources import colored_noise

pytest.importorskip("pyroomacoustics")
from neuraudio.data.echo import build_echo, draw_params, drift, loudspeaker, sabine_min_rt60, simulate  # noqa: E402

SR = 16000


def gcc_phat_delay(ref: np.ndarray, sig: np.ndarray, max_lag: int) -> int:
    n = 2 * len(ref)
    cross = np.fft.rfft(sig, n) * np.conj(np.fft.rfft(ref, n))
    cc = np.fft.irfft(cross / np.maximum(np.abs(cross), 1e-12), n)
    return int(np.argmax(cc[: max_lag + 1]))


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory):
    """Speech-like material without TTS: noise bursts under a syllable-rate envelope, three files."""
    root = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    for i in range(3):
        t = np.arange(6 * SR) / SR
        envelope = np.clip(np.sin(2 * np.pi * 3 * t + i), 0, None) ** 2
        x = 0.2 * envelope * colored_noise(rng, len(t), 1.0)
        sf.write(root / f"s{i}.wav", x, SR, subtype="FLOAT")
    return root


def test_level_and_tilt_do_what_they_say():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR)
    assert rms_db(level_to(x, -20.0, peak_dbfs=20.0)) == pytest.approx(-20.0, abs=1e-9)
    assert 20 * np.log10(np.abs(level_to(x, 0.0, peak_dbfs=-1.0)).max()) == pytest.approx(-1.0, abs=1e-9)
    t = np.arange(SR) / SR
    for f, expected in ((100.0, -3.0), (8000.0 * 0.99, 3.0)):
        tone = np.sin(2 * np.pi * f * t)
        gain = rms_db(tilt(tone, SR, 6.0)) - rms_db(tone)
        assert gain == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("exponent", [-2.0, 0.0, 1.0, 2.0])
def test_colored_noise_has_the_asked_slope(exponent):
    x = colored_noise(np.random.default_rng(1), 2**16, exponent)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x))
    band = (f > 0.01) & (f < 0.4)
    slope = np.polyfit(np.log(f[band]), np.log(spectrum[band]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.1)


def test_drift_changes_length_by_the_ppm():
    x = np.random.default_rng(2).standard_normal(10 * SR)
    y = drift(x, 100.0)
    assert len(y) == pytest.approx(len(x) / (1 + 100e-6), abs=1)
    assert np.array_equal(drift(x, 0.0), x)


def test_loudspeaker_nonlinearities():
    x = np.linspace(-1, 1, 1001)
    assert np.array_equal(loudspeaker(x, "none", 0.5), x)
    soft = loudspeaker(x, "soft_clip", 1.0)
    assert np.abs(soft).max() <= 0.1 + 1e-12 and np.all(np.diff(soft) >= 0)
    hard = loudspeaker(x, "hard_clip", 0.5)
    assert np.abs(hard).max() == pytest.approx(10 ** (-9.5 / 20))
    poly = loudspeaker(x, "polynomial", 1.0)
    assert not np.allclose(poly, -poly[::-1])  # the even term makes it asymmetric
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        loudspeaker(x, "fuzz", 1.0)


def test_rt60_is_drawn_within_what_the_room_allows():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = draw_params(rng, SR)
        assert sabine_min_rt60(p["room_dim"]) < p["rt60"] <= 1.0
        assert 0 <= p["bulk_delay_samples"] <= 0.2 * SR and abs(p["drift_ppm"]) <= 100


def test_simulated_delay_matches_cross_correlation_to_the_sample():
    rng = np.random.default_rng(4)
    far, noise = rng.standard_normal(4 * SR) * 0.1, rng.standard_normal(4 * SR)
    for seed in range(4):
        p = draw_params(np.random.default_rng(seed), SR)
        p.update(scenario="far_end_only", nonlinearity="none", drift_ppm=0.0, snr_db=40.0)
        parts = simulate(p, far, np.zeros_like(far), noise, SR)
        estimate = gcc_phat_delay(parts["ref"], parts["echo"], int(0.3 * SR))
        assert estimate == parts["echo_delay_samples"]


def test_built_clips_are_exact_deterministic_and_resumable(speech_dir, tmp_path):
    metas = build_echo(tmp_path / "a", clips=3, speech=speech_dir, sample_rate=SR, seconds=2.0, seed=5, workers=2)
    assert len(metas) == 3
    for meta in metas:
        folder = tmp_path / "a" / meta["folder"]
        read = {n: sf.read(folder / f"{n}.wav", dtype="float64")[0] for n in ("mic", "ref", "target", "echo", "noise")}
        assert np.abs(read["mic"] - read["echo"] - read["target"] - read["noise"]).max() <= 1e-6
        assert max(np.abs(v).max() for v in read.values()) <= 1.0
        if meta["scenario"] == "far_end_only":
            assert not read["target"].any()
        if meta["scenario"] == "near_end_only":
            assert not read["ref"].any() and not read["echo"].any()
    build_echo(tmp_path / "b", clips=3, speech=speech_dir, sample_rate=SR, seconds=2.0, seed=5, workers=1)

    def digest(root):
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    victim = tmp_path / "a" / metas[1]["folder"]
    for f in victim.iterdir():
        f.unlink()
    build_echo(tmp_path / "a", clips=3, speech=speech_dir, sample_rate=SR, seconds=2.0, seed=5)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_missing_speech_folder_is_a_sentence(tmp_path):
    with pytest.raises(ValueError, match="no audio files found for the speech pool"):
        build_echo(tmp_path / "x", clips=1, speech=tmp_path, sample_rate=SR)
