"""End-to-end runs of the speech, music and noise builders (skipped where their Debian tools are absent), the
tool errors, and `neuraudio data stats`."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from neuraudio.cli import main
from neuraudio.data import tools
from neuraudio.data.tools import ToolError, require

needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs the Debian package espeak-ng")
needs_fluidsynth = pytest.mark.skipif(not shutil.which("fluidsynth") or not tools.soundfonts(),
                                      reason="needs fluidsynth and a General MIDI soundfont")


def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_missing_tool_names_its_debian_package(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolError, match=r"text2wave is not installed; install the Debian package festival"):
        require("text2wave")
    from neuraudio.data.speech import voices

    with pytest.raises(ToolError, match="espeak-ng, flite and festival"):
        voices()


def test_cli_reports_a_missing_tool_in_one_sentence(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["data", "music", str(tmp_path / "m"), "--songs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fluidsynth is not installed" in err[0]
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("kind", ["speech", "echo"])
def test_a_build_that_cannot_start_leaves_no_folder(monkeypatch, tmp_path, capsys, kind):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    extra = ["--speech", str(tmp_path / "nothing")] if kind == "echo" else []
    assert main(["data", kind, str(tmp_path / "out"), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not (tmp_path / "out").exists()


@needs_espeak
def test_speech_build_is_deterministic_resumable_and_varied(tmp_path):
    from neuraudio.data.speech import build_speech

    a = build_speech(tmp_path / "a", minutes=0.4, sample_rate=16000, seed=3, workers=2)
    build_speech(tmp_path / "b", minutes=0.4, sample_rate=16000, seed=3, workers=1)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert sum(e["seconds"] for e in a) >= 24 and sum(e["seconds"] for e in a[:-1]) < 24
    (tmp_path / "a" / a[0]["file"]).unlink()
    build_speech(tmp_path / "a", minutes=0.4, sample_rate=16000, seed=3)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    for e in a:
        x, rate = sf.read(tmp_path / "a" / e["file"])
        assert rate == 16000 and len(x) / rate == pytest.approx(e["seconds"], abs=1e-3)
        rms = 10 * np.log10(np.mean(x**2))
        assert rms <= e["level_db"] + 0.1 and np.abs(x).max() <= 10 ** (-1 / 20) + 1e-3
    manifest = [json.loads(line) for line in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert [m["index"] for m in manifest] == list(range(len(a)))
    assert len({m["speaker"] for m in manifest}) >= min(len(manifest), 3)
    shorter = build_speech(tmp_path / "a", minutes=0.1, sample_rate=16000, seed=3)
    assert sorted(p.name for p in (tmp_path / "a").glob("utt_*.wav")) == sorted(e["file"] for e in shorter)


@needs_fluidsynth
def test_music_build_stems_sum_to_the_mixture_and_are_deterministic(tmp_path):
    from neuraudio.data.music import STEMS, build_music

    metas = build_music(tmp_path / "a", songs=1, seconds=5.0, sample_rate=22050, seed=1, workers=1)
    song = tmp_path / "a" / metas[0]["folder"]
    stems = {p.stem: sf.read(p, dtype="float64")[0] for p in song.glob("*.wav") if p.stem != "mixture"}
    assert set(stems) == set(metas[0]["stems"]) and set(stems) <= set(STEMS) and len(stems) >= 2
    mixture, rate = sf.read(song / "mixture.wav", dtype="float64")
    assert rate == 22050 and mixture.shape == (5 * rate, 2) and metas[0]["seconds"] == 5.0  # was 9.28 s
    assert np.abs(mixture[-10:]).max() <= 1e-3 < np.abs(mixture[-rate:]).max()  # faded out, not cut off
    assert np.abs(mixture - sum(stems.values())).max() <= 1e-6
    assert all(np.sqrt(np.mean(x**2)) > 1e-4 for x in stems.values())  # no silent stem is written
    build_music(tmp_path / "b", songs=1, seconds=5.0, sample_rate=22050, seed=1, workers=1)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_noise_build_and_stats(tmp_path, capsys):
    from neuraudio.data.noise import build_noise

    entries = build_noise(tmp_path / "n", minutes=0.5, sample_rate=8000, seconds=3.0, seed=2, workers=1)
    assert len(entries) == 10 and {e["kind"] for e in entries} <= {"colored", "modulated"}
    for e in entries:
        x, _ = sf.read(tmp_path / "n" / e["file"])
        assert 10 * np.log10(np.mean(x**2)) <= e["level_db"] + 0.1
    assert main(["data", "stats", str(tmp_path / "n"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["kind"] == "noise" and stats["items"] == 10 and stats["minutes"] == pytest.approx(0.5)


def test_stats_of_a_folder_that_was_not_built_is_a_sentence(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path)]) == 1
    assert "no build.json" in capsys.readouterr().err


def test_echo_without_speech_is_a_usage_sentence(tmp_path, capsys):
    assert main(["data", "echo", str(tmp_path / "e"), "--clips", "1"]) == 1
    assert "needs --speech" in capsys.readouterr().err
