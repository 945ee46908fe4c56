import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import neuraudio
from neuraudio import metrics
from neuraudio.cli import main
from neuraudio.examples import noisy_melody


def run_cli(*args):
    """Run the real console entry point in a subprocess: exit code, stdout, stderr."""
    proc = subprocess.run([sys.executable, "-m", "neuraudio", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def noisy(tmp_path):
    path = tmp_path / "noisy.wav"
    neuraudio.write_audio(path, noisy_melody(3.0, 48000), 48000, bit_depth="32f")
    return path


def test_version_and_models(capsys):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"neuraudio {neuraudio.__version__}"
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    gate = {r["name"]: r for r in rows}["spectral-gate"]
    assert gate["latency"] == 768 and gate["stream_latency"] == 1023 and gate["sample_rate"] == 48000
    assert gate["knobs"]["threshold_db"]["unit"] == "dBFS"


def test_info_prints_measured_levels(tmp_path, capsys):
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "sine.flac", 0.5 * np.sin(2 * np.pi * 440 * t)[:, None].repeat(2, 1), 44100, subtype="PCM_24")
    assert main(["info", "--json", str(tmp_path / "sine.flac")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["format"] == "FLAC" and row["subtype"] == "PCM_24" and row["channels"] == 2
    assert row["sample_rate"] == 44100 and row["duration_s"] == 1.0
    assert row["peak_dbfs"] == pytest.approx(-6.02, abs=0.01) and row["rms_dbfs"] == pytest.approx(-9.03, abs=0.01)
    assert main(["info", str(tmp_path / "sine.flac")]) == 0
    assert "44100 Hz, 2 ch, 1.000 s, peak -6.02 dBFS" in capsys.readouterr().out


def test_effect_on_a_file_equals_the_python_api_and_lowers_the_noise_floor(noisy, tmp_path):
    out = tmp_path / "gated.wav"
    code, stdout, stderr = run_cli("effect", "spectral-gate", noisy, out, "--knob", "reduction_db=30",
                                   "--bit-depth", "32f")
    assert code == 0, stderr
    y, rate = neuraudio.read_audio(out)
    x, _ = neuraudio.read_audio(noisy)
    assert rate == 48000 and y.shape == x.shape
    model = neuraudio.load("spectral-gate")
    assert (y - model.process(x, reduction_db=30.0)).abs().max() <= 1e-5
    floor_in = neuraudio.audio.measure_levels(noisy).floor_dbfs
    floor_out = neuraudio.audio.measure_levels(out).floor_dbfs
    assert floor_in - floor_out >= 20.0


def test_effect_resamples_and_keeps_length_and_channels(tmp_path, capsys):
    # tones only (no broadband noise), so the resampler's band edge near Nyquist does not count as error
    x = torch.cat([noisy_melody(2.0, 44100, noise_dbfs=-200), noisy_melody(2.0, 44100, noise_dbfs=-200, seed=1)])
    neuraudio.write_audio(tmp_path / "in.flac", x, 44100, bit_depth="24")
    assert main(["effect", "spectral-gate", str(tmp_path / "in.flac"), str(tmp_path / "out.flac"), "-q"]) == 0
    assert "resampled 44100 Hz -> 48000 Hz" in capsys.readouterr().err
    y, rate = neuraudio.read_audio(tmp_path / "out.flac")
    assert rate == 44100 and y.shape == x.shape
    # with the gate wide open (threshold at the bottom) the chain is resample -> STFT identity -> resample
    assert main(["effect", "spectral-gate", str(tmp_path / "in.flac"), str(tmp_path / "open.wav"), "-q",
                 "--knob", "threshold_db=-100", "--knob", "reduction_db=0", "--bit-depth", "32f"]) == 0
    z, _ = neuraudio.read_audio(tmp_path / "open.wav")
    x24, _ = neuraudio.read_audio(tmp_path / "in.flac")
    snr = 10 * torch.log10(x24.pow(2).sum() / (z - x24)[:, 100:-100].pow(2).sum())
    assert snr >= 70.0  # aligned to the sample: one sample of shift gives 24 dB


@pytest.mark.parametrize("case", ["missing", "not-audio", "bad-knob", "unknown-model", "overwrite", "nan-late"])
def test_cli_errors_exit_non_zero_with_one_sentence_and_no_output(tmp_path, noisy, case):
    out = tmp_path / "out.wav"
    args = ["effect", "spectral-gate", noisy, out]
    if case == "missing":
        args[2] = tmp_path / "nope.wav"
    elif case == "not-audio":
        (tmp_path / "notes.wav").write_text("hello")
        args[2] = tmp_path / "notes.wav"
    elif case == "bad-knob":
        args += ["--knob", "threshold_db=12"]
    elif case == "unknown-model":
        args[1] = "fuzz-9000"
    elif case == "overwrite":
        out = noisy
        args[3] = noisy
    elif case == "nan-late":  # the failure comes after output blocks were already written
        data = np.random.default_rng(0).standard_normal((48000 * 4, 1)).astype(np.float32) * 0.01
        data[-100] = np.nan
        sf.write(tmp_path / "late.wav", data, 48000, subtype="FLOAT")
        args[2] = tmp_path / "late.wav"
    before = noisy.read_bytes()
    code, stdout, stderr = run_cli(*args)
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuraudio effect: error: ") and "Traceback" not in stderr
    assert noisy.read_bytes() == before
    if case != "overwrite":
        assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_usage_error_exits_2():
    code, _, stderr = run_cli("effect")
    assert code == 2 and "usage" in stderr


def test_example_command_writes_a_deterministic_file(tmp_path):
    assert main(["example", str(tmp_path / "a.wav"), "--seconds", "1", "-q"]) == 0
    assert main(["example", str(tmp_path / "b.wav"), "--seconds", "1", "-q"]) == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_import_stays_light():
    code = ("import sys, neuraudio; heavy = [m for m in ('lightning', 'librosa', 'pytorch_lightning', 'numba') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


KNOB_MODELS = sorted(name for name in neuraudio.hub.shipped()  # `neuraudio effect` takes one-input models
                     if neuraudio.load(name).knobs and len(neuraudio.load(name).inputs) == 1)


@pytest.mark.parametrize("name", KNOB_MODELS)
def test_effect_with_a_shipped_knob_model_on_a_file_matches_the_api(name, tmp_path, capsys):
    model = neuraudio.load(name)
    knob, spec = next(iter(model.knobs.items()))
    value = spec.minimum + 0.3 * (spec.maximum - spec.minimum)
    x = 0.3 * noisy_melody(1.0, model.sample_rate)
    x = torch.cat([x, 0.5 * x.roll(100, -1)])  # stereo
    neuraudio.write_audio(tmp_path / "in.wav", x, model.sample_rate, bit_depth="32f")
    assert main(["effect", name, str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--knob", f"{knob}={value}",
                 "--bit-depth", "32f", "--quiet"]) == 0
    y, rate = neuraudio.read_audio(tmp_path / "out.wav")
    assert rate == model.sample_rate and y.shape == x.shape
    with torch.no_grad():
        expected = model.process(x, **{knob: value})
    assert (y - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("name", KNOB_MODELS)
@pytest.mark.parametrize("bad", ["unknown", "range", "nan", "syntax"])
def test_effect_knob_errors_for_shipped_knob_models(name, bad, tmp_path, noisy, capsys):
    model = neuraudio.load(name)
    knob, spec = next(iter(model.knobs.items()))
    value = {"unknown": "volume_xyz=1", "range": f"{knob}={spec.maximum + 1}", "nan": f"{knob}=nan",
             "syntax": knob}[bad]
    out = tmp_path / "out.wav"
    assert main(["effect", name, str(noisy), str(out), "--knob", value]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("neuraudio effect: error: ")
    if bad == "range":
        assert f"outside its range {spec.range_text}." in err and "0..1 0..1" not in err
    assert not out.exists()


def test_models_list_describe_and_pipe(tmp_path, capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    klon = listing[listing.index("klon-centaur  [effect]"):].splitlines()
    assert klon[1].strip().startswith("Klon Centaur overdrive")  # was an empty summary line
    assert klon[2].split() == ["gain", "0..1", "(default", "0.5):", "gain", "knob", "of", "the", "pedal",
                               "(audio-taper", "pot)"]  # was "0..1 0..1"
    assert main(["models", "compressor"]) == 0
    detail = capsys.readouterr().out
    assert "threshold_db   -60..0 dBFS (default -20)" in detail and "parameters" in detail
    assert "trained with: neuraudio train" in detail
    folder = neuraudio.hub.shipped()["compressor"]
    assert main(["models", str(folder), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["path"] == str(folder) and row["knobs"]["ratio"]["maximum"] == 20.0
    assert main(["models", str(tmp_path)]) == 1
    assert "not a model folder" in capsys.readouterr().err
    # a reader that stops early (`neuraudio models | head -3`) was a BrokenPipeError traceback
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, "-m", "neuraudio", "models"], stdout=write, stderr=subprocess.PIPE,
                          text=True, timeout=300)
    os.close(write)
    assert proc.returncode == 141 and proc.stderr == ""


def test_info_reports_every_file_and_fails_if_any_did(tmp_path, noisy, capsys):
    (tmp_path / "bad.wav").write_text("not audio")
    assert main(["info", str(noisy), str(tmp_path / "bad.wav"), str(tmp_path / "missing.wav"), str(noisy)]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("noisy.wav: WAV/FLOAT, 48000 Hz") == 2  # the files after the bad ones too
    err = captured.err.strip().splitlines()
    assert len(err) == 3 and "bad.wav: not a readable audio file" in err[0] and "missing.wav: no such file" in err[1]
    assert err[2] == "neuraudio info: error: 2 of 4 files could not be read."


def test_written_files_and_folders_get_the_umask_mode(tmp_path):
    """Every written file was 0600 and exported folders 0700 (the temporary file's mode)."""
    old = os.umask(0o022)
    try:
        assert main(["example", str(tmp_path / "x.wav"), "-q"]) == 0
        from neuraudio.effects.linear import LinearEffect

        neuraudio.hub.save_folder(LinearEffect(16000, 4), tmp_path / "model", name="m", task="effect")
    finally:
        os.umask(old)
    assert oct(os.stat(tmp_path / "x.wav").st_mode & 0o777) == oct(0o644)
    assert oct(os.stat(tmp_path / "model").st_mode & 0o777) == oct(0o755)
    for name in ("model.safetensors", "config.json", "README.md"):  # safetensors wrote its file 0600
        assert oct(os.stat(tmp_path / "model" / name).st_mode & 0o777) == oct(0o644), name


def test_unwritable_output_folder_is_one_sentence_naming_the_users_path(tmp_path, noisy, capsys, monkeypatch):
    import tempfile

    def immutable(*args, dir=None, **kwargs):  # what `chattr +i` does to the folder, even for root
        raise PermissionError(1, "Operation not permitted", os.path.join(dir, ".o.wav.x1y2.part"))

    monkeypatch.setattr(tempfile, "mkstemp", immutable)
    target = tmp_path / "ro" / "o.wav"
    target.parent.mkdir()
    assert main(["effect", "spectral-gate", str(noisy), str(target), "-q"]) == 1
    err = capsys.readouterr().err
    assert err == (f"neuraudio effect: error: {target}: cannot write in the folder {target.parent} "
                   "(Operation not permitted).\n")


def test_sigterm_during_effect_leaves_no_partial_file(tmp_path):
    import signal
    import time

    long = tmp_path / "long.wav"
    neuraudio.write_audio(long, 0.3 * noisy_melody(120.0, 44100), 44100, bit_depth="16")
    proc = subprocess.Popen([sys.executable, "-m", "neuraudio", "effect", "klon-centaur", str(long),
                             str(tmp_path / "o.wav"), "-q", "--threads", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.endswith(".part") for p in os.listdir(tmp_path)) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and err == "neuraudio effect: terminated\n"
    assert sorted(os.listdir(tmp_path)) == ["long.wav"]


def test_effect_on_several_files_and_a_folder_into_a_folder(tmp_path, noisy, capsys):
    (tmp_path / "takes" / "sub").mkdir(parents=True)
    for name in ("a.flac", "sub/b.wav"):
        neuraudio.write_audio(tmp_path / "takes" / name, noisy_melody(0.5, 48000, seed=len(name)), 48000)
    (tmp_path / "takes" / "sub" / "c.wav").write_text("broken")
    out = tmp_path / "gated"
    code = main(["effect", "spectral-gate", str(noisy), str(tmp_path / "takes"), "-o", str(out), "-q",
                 "--knob", "reduction_db=30", "--threads", "1"])
    assert code == 1  # c.wav is not audio: reported, the others written
    err = capsys.readouterr().err.strip().splitlines()
    assert "c.wav: not a readable audio file" in err[0] and err[-1].endswith("1 of 4 files failed; the others were written.")
    model = neuraudio.load("spectral-gate")
    for source, target in [(noisy, out / "noisy.wav"), (tmp_path / "takes" / "a.flac", out / "a.flac"),
                           (tmp_path / "takes" / "sub" / "b.wav", out / "sub" / "b.wav")]:
        x, _ = neuraudio.read_audio(source)
        y, _ = neuraudio.read_audio(target)
        assert (y - model.process(x, reduction_db=30.0)).abs().max() <= 1e-4
    assert not (out / "sub" / "c.wav").exists()
    assert main(["effect", "spectral-gate", str(noisy), str(noisy), str(tmp_path / "x.wav")]) == 1
    assert "effect takes IN OUT, or input files and folders with -o DIR; got 3 paths" in capsys.readouterr().err


def test_effect_help_lists_the_models_knobs():
    code, out, _ = run_cli("effect", "compressor", "--help")
    assert code == 0 and "neuraudio effect MODEL IN... -o DIR" in out and "examples:" in out
    assert "release_ms     10..1000 ms (default 100)" in out
    code, out, _ = run_cli("aec", "aec-16k", "--help")
    assert code == 0 and "--mic MIC" in out and "noise_reduction_db 0..60 dB" in out


@pytest.mark.parametrize("task,model", [("echo", "spectral-gate"), ("vocoder", "compressor")])
def test_eval_refuses_a_model_of_another_task(task, model, tmp_path, capsys):
    """`eval echo --model spectral-gate` ended in a TypeError and `eval vocoder --model compressor` printed numbers."""
    neuraudio.write_audio(tmp_path / "a.wav", noisy_melody(0.5, 48000), 48000)
    assert main(["eval", task, "--model", model, "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    article = "an" if task == "echo" else "a"
    assert len(err) == 1 and err[0].endswith(f"is a model of the effect task; `eval {task}` needs {article} {task} model.")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_effect_on_cuda_equals_the_cpu(tmp_path):
    x = 0.3 * noisy_melody(3.0, 44100)
    neuraudio.write_audio(tmp_path / "in.wav", x, 44100, bit_depth="32f")
    for run_device in ("cpu", "cuda"):
        assert main(["effect", "klon-centaur", str(tmp_path / "in.wav"), str(tmp_path / f"{run_device}.wav"),
                     "--knob", "gain=0.8", "--bit-depth", "32f", "--device", run_device, "-q"]) == 0
    on_cpu, _ = neuraudio.read_audio(tmp_path / "cpu.wav")
    on_gpu, _ = neuraudio.read_audio(tmp_path / "cuda.wav")
    assert (on_cpu - on_gpu).abs().max() <= 1e-3


def test_separate_writes_one_file_per_stem_that_sums_to_the_input(tmp_path, capsys):
    t = torch.arange(44100 * 2) / 44100
    x = 0.3 * torch.sin(2 * torch.pi * 220 * t)
    x[::11025] += 0.5
    song = tmp_path / "song.flac"
    neuraudio.write_audio(song, torch.stack([x, 0.5 * x]), 44100, bit_depth="24")
    assert main(["separate", "hpss", str(song), "-o", str(tmp_path / "out"), "-q", "--bit-depth", "24"]) == 0
    stems = [neuraudio.read_audio(tmp_path / "out" / "song" / f"{s}.flac")[0] for s in ("harmonic", "percussive")]
    mix, _ = neuraudio.read_audio(song)
    assert stems[0].shape == mix.shape and (stems[0] + stems[1] - mix).abs().max() <= 1e-4
    assert main(["separate", "hpss", str(song), "-o", str(tmp_path / "p"), "--stems", "percussive", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "p" / "song").iterdir()) == ["percussive.flac"]
    assert main(["separate", "hpss", str(song), "-o", str(tmp_path / "x"), "--stems", "drums"]) == 1
    assert "hpss's stems are harmonic, percussive" in capsys.readouterr().err
    (tmp_path / "bad.wav").write_text("no audio")
    assert main(["separate", "hpss", str(tmp_path / "bad.wav"), "-o", str(tmp_path / "b")]) == 1
    assert not (tmp_path / "b" / "bad").exists()  # no empty folder left


def test_process_files_runs_a_two_input_model_over_files(tmp_path):
    from tests.test_stream_processor import EchoSubtract

    model = EchoSubtract(16000)
    mic, ref = noisy_melody(2.0, 16000), noisy_melody(2.0, 16000, seed=3)
    neuraudio.write_audio(tmp_path / "mic.wav", mic, 16000, bit_depth="32f")
    neuraudio.write_audio(tmp_path / "ref.wav", ref, 16000, bit_depth="32f")
    neuraudio.process_files(model, [tmp_path / "mic.wav", tmp_path / "ref.wav"], [tmp_path / "out.wav"],
                            knobs={"gain": 0.8}, bit_depth="32f", block_frames=1000)
    y, _ = neuraudio.read_audio(tmp_path / "out.wav")
    assert (y - model.process(mic, ref, gain=0.8)).abs().max() <= 1e-6
    with pytest.raises(neuraudio.AudioError, match=r"takes 2 input file\(s\) \(mic, ref\), got 1"):
        neuraudio.process_files(model, [tmp_path / "mic.wav"], [tmp_path / "o.wav"])


def test_enhance_and_vocode_commands(tmp_path, capsys):
    import numpy as np

    noisy = tmp_path / "noisy.wav"
    neuraudio.write_audio(noisy, noisy_melody(2.0, 16000, noise_dbfs=-30.0), 16000, bit_depth="32f")
    assert main(["enhance", "denoise-mmse", str(noisy), str(tmp_path / "clean.wav"), "-q", "--bit-depth", "32f"]) == 0
    y, _ = neuraudio.read_audio(tmp_path / "clean.wav")
    x, _ = neuraudio.read_audio(noisy)
    assert (y - neuraudio.load("denoise-mmse").process(x)).abs().max() <= 1e-5
    assert main(["enhance", "klon-centaur", str(noisy), str(tmp_path / "k.wav")]) == 1
    assert "`enhance` needs a speech enhancement model" in capsys.readouterr().err
    vocoder = neuraudio.load("griffin-lim")
    mel = vocoder.mel(neuraudio.read_audio(noisy, sample_rate=22050, channels=1)[0])[0]
    np.save(tmp_path / "mel.npy", mel.numpy())
    assert main(["vocode", "griffin-lim", "--mel", str(tmp_path / "mel.npy"), str(tmp_path / "m.wav"), "-q"]) == 0
    audio, rate = neuraudio.read_audio(tmp_path / "m.wav")
    assert rate == 22050 and audio.shape == (1, (mel.shape[-1] - 1) * 256)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))  # never unpickled
    assert main(["vocode", "griffin-lim", "--mel", str(tmp_path / "objects.npy"), str(tmp_path / "o.wav")]) == 1
    assert "not a readable .npy array" in capsys.readouterr().err and not (tmp_path / "o.wav").exists()
    assert main(["vocode", "griffin-lim", str(noisy), str(tmp_path / "r.wav"), "-q"]) == 0
    assert neuraudio.read_audio(tmp_path / "r.wav")[0].shape == x.shape


@pytest.mark.parametrize("name", ["apnet-16k", "apnet-stream-16k"])
def test_vocode_with_the_shipped_vocoders(name, tmp_path, capsys):
    """Resynthesis of a file equals the API; --mel takes the model's own features; a mel of another band count or a
    pickled array is one sentence and writes nothing."""
    import numpy as np

    speech = tmp_path / "speech.wav"
    neuraudio.write_audio(speech, noisy_melody(1.0, 16000, noise_dbfs=-50.0), 16000, bit_depth="32f")
    assert main(["vocode", name, str(speech), str(tmp_path / "r.wav"), "-q", "--bit-depth", "32f"]) == 0
    x, _ = neuraudio.read_audio(speech)
    y, rate = neuraudio.read_audio(tmp_path / "r.wav")
    vocoder = neuraudio.load(name)
    assert rate == 16000 and y.shape == x.shape
    assert float(metrics.mrstft(y, vocoder.process(x))) <= 0.05  # iterative phases: equal up to last bits' echoes
    mel = vocoder.analyse(x)[0]
    np.save(tmp_path / "mel.npy", mel.numpy())
    assert main(["vocode", name, "--mel", str(tmp_path / "mel.npy"), str(tmp_path / "m.wav"), "-q"]) == 0
    assert neuraudio.read_audio(tmp_path / "m.wav")[0].shape[-1] >= mel.shape[-1] * 128 - 128
    np.save(tmp_path / "bands64.npy", mel[:64].numpy())
    assert main(["vocode", name, "--mel", str(tmp_path / "bands64.npy"), str(tmp_path / "b.wav")]) == 1
    err = capsys.readouterr().err
    assert "mel has 64 bands but this vocoder uses 80" in err and len(err.strip().splitlines()) == 1
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    assert main(["vocode", name, "--mel", str(tmp_path / "objects.npy"), str(tmp_path / "o.wav")]) == 1
    assert "not a readable .npy array" in capsys.readouterr().err
    assert not (tmp_path / "b.wav").exists() and not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("name", ["denoise-16k", "denoise-stream-16k"])
def test_enhance_with_the_shipped_denoisers(name, tmp_path, capsys):
    """A noisy file comes out equal to the API's output, with the noise between the notes at least 10 dB lower; a
    file at another rate is resampled; bad input (a missing file, an output over its input, a file that is not
    audio) is one sentence and writes nothing."""
    from neuraudio.audio import resample

    clean = noisy_melody(3.0, 16000, noise_dbfs=-90.0)
    noise = 0.03 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = tmp_path / "noisy.wav"
    neuraudio.write_audio(noisy, clean + noise, 16000, bit_depth="32f")
    assert main(["enhance", name, str(noisy), str(tmp_path / "out.wav"), "-q", "--bit-depth", "32f"]) == 0
    y, rate = neuraudio.read_audio(tmp_path / "out.wav")
    model = neuraudio.load(name)
    x, _ = neuraudio.read_audio(noisy)
    with torch.inference_mode():
        assert rate == 16000 and y.shape == x.shape and (y - model.process(x)).abs().max() <= 1e-4
    rests = (clean.unfold(-1, 320, 320).pow(2).mean(-1).sqrt() < 1e-3).repeat_interleave(320, -1)  # between notes
    n = rests.shape[-1]
    assert rests.float().mean() > 0.2
    reduction_db = 10 * torch.log10(y[..., :n][rests].pow(2).mean() / x[..., :n][rests].pow(2).mean())
    assert reduction_db < -10.0  # the noise between the notes is removed (outputs are aligned with inputs)
    neuraudio.write_audio(tmp_path / "noisy48.wav", resample(clean + noise, 16000, 48000), 48000)
    assert main(["enhance", name, str(tmp_path / "noisy48.wav"), str(tmp_path / "out48.wav"), "-q"]) == 0
    assert "resampled 48000 Hz -> 16000 Hz" in capsys.readouterr().err
    assert neuraudio.read_audio(tmp_path / "out48.wav")[1] == 48000
    (tmp_path / "text.wav").write_text("not audio")
    for args in (["missing.wav", "o1.wav"], [str(noisy), str(noisy)], [str(tmp_path / "text.wav"), "o2.wav"]):
        assert main(["enhance", name, *[a if "/" in a else str(tmp_path / a) for a in args], "-q"]) == 1
        err = capsys.readouterr().err.strip()
        assert err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o1.wav").exists() and not (tmp_path / "o2.wav").exists()
    assert neuraudio.read_audio(noisy)[0].shape == x.shape  # the input is untouched


def test_eval_echo_scores_each_scenario(tmp_path, capsys):
    from tests.test_aec_linear import echo_path

    ref, echo = echo_path(2.0, seed=6)
    t = torch.arange(2 * 16000) / 16000
    near = 0.05 * torch.sin(2 * torch.pi * 250 * t)[None]
    for name, scenario, mic, target in [("a", "far_end_only", echo, torch.zeros_like(echo)),
                                        ("b", "double_talk", echo + near, near),
                                        ("c", "near_end_only", near, near)]:
        (tmp_path / name).mkdir()
        for part, audio in (("mic", mic), ("ref", ref if scenario != "near_end_only" else 0 * ref), ("target", target)):
            neuraudio.write_audio(tmp_path / name / f"{part}.wav", audio, 16000, bit_depth="32f")
        (tmp_path / name / "meta.json").write_text(json.dumps({"scenario": scenario}))
    assert main(["eval", "echo", "--model", "aec-linear", "--data", str(tmp_path), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["items"]["a"]) == {"erle_far_end"} and report["items"]["a"]["erle_far_end"] >= 10.0
    assert abs(report["items"]["c"]["level_db_near_end_only"]) <= 0.5
    assert set(report["items"]["b"]) == {"si_sdr_double_talk", "level_db_double_talk", "gain_db_double_talk"}
    assert abs(report["items"]["c"]["gain_db_near_end_only"]) <= 0.5


def test_eval_enhancement_scores_the_noisy_input_beside_the_model(tmp_path, capsys):
    for sub in ("clean", "noisy"):
        (tmp_path / sub).mkdir()
    for i in range(2):
        clean = noisy_melody(2.0, 16000, noise_dbfs=-90.0, seed=i)
        noise = 0.02 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(i))
        neuraudio.write_audio(tmp_path / "clean" / f"u{i}.wav", clean, 16000, bit_depth="32f")
        neuraudio.write_audio(tmp_path / "noisy" / f"u{i}.wav", clean + noise, 16000, bit_depth="32f")
    assert main(["eval", "enhancement", "--model", "denoise-mmse", "--data", str(tmp_path), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    for row in report["items"].values():
        assert row["si_sdr"] > row["si_sdr_input"]  # the denoiser improves on its input, and both are reported
        assert ("pesq_wb" in row) == ("pesq_wb_input" in row)


def test_eval_separation_scores_sdr_and_si_sdr_beside_the_mixture_and_skips_silent_stems(tmp_path, capsys):
    from neuraudio.examples import toy_song

    for i, vocals in enumerate((True, False)):
        stems = toy_song(3.0, 44100, seed=i, vocals=vocals)
        (tmp_path / f"song{i}").mkdir()
        parts = {"percussive": stems["drums"], "harmonic": stems["bass"] + stems["other"] + stems["vocals"]}
        if i == 1:
            parts["harmonic"] = 0 * parts["harmonic"]  # a song without a harmonic stem
        for name, audio in parts.items():
            neuraudio.write_audio(tmp_path / f"song{i}" / f"{name}.wav", audio, 44100, bit_depth="32f")
    assert main(["eval", "separation", "--model", "hpss", "--data", str(tmp_path), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    first, second = report["items"]["song0"], report["items"]["song1"]
    assert {"sdr_percussive", "si_sdr_percussive", "sdr_percussive_input", "sdr"} <= set(first)
    assert "sdr_harmonic" in first and "sdr_harmonic" not in second  # silent there: undefined, left out
    assert first["sdr_percussive"] > first["sdr_percussive_input"] + 3.0  # HPSS finds the drums
