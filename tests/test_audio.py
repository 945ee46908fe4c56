import math
import os
import stat

import numpy as np
import pytest
import soundfile as sf
import torch

from neuraudio.audio import (AudioError, AudioWriter, audio_info, convert_channels, iter_audio_blocks, measure_levels,
                             read_audio, resample, write_audio)

SR = 44100


def signal(channels=2, seconds=0.5, amplitude=0.5):
    t = torch.arange(int(SR * seconds)) / SR
    rows = [amplitude * torch.sin(2 * math.pi * (220 * (c + 1)) * t) for c in range(channels)]
    return torch.stack(rows).float()


@pytest.mark.parametrize("suffix,bit_depth,tolerance", [
    (".wav", "16", 2.0**-15), (".wav", "24", 2.0**-23), (".wav", "32f", 0.0),
    (".flac", "16", 2.0**-15), (".flac", "24", 2.0**-23),
])
def test_write_then_read_within_quantization(tmp_path, suffix, bit_depth, tolerance):
    x = signal()
    path = tmp_path / f"x{suffix}"
    assert write_audio(path, x, SR, bit_depth=bit_depth) == 0
    y, rate = read_audio(path)
    assert rate == SR and y.dtype == torch.float32 and y.shape == x.shape
    assert (y - x).abs().max() <= tolerance
    info = audio_info(path)
    assert info.channels == 2 and info.frames == x.shape[-1] and info.duration == pytest.approx(0.5)


@pytest.mark.parametrize("fmt,subtype,min_snr_db", [
    ("AIFF", "PCM_24", 120.0), ("WAV", "PCM_32", 150.0), ("OGG", "VORBIS", 15.0), ("MP3", "MPEG_LAYER_III", 15.0),
])
def test_reads_other_formats(tmp_path, fmt, subtype, min_snr_db):
    x = signal(channels=1)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, x.numpy().T, SR, subtype=subtype, format=fmt)
    y, rate = read_audio(path)
    assert rate == SR and y.shape[0] == 1
    if fmt in ("OGG", "MP3"):  # lossy codecs add their own delay/padding; compare levels of the overlap
        n = min(x.shape[-1], y.shape[-1])
        assert abs(float(y[:, :n].std() / x[:, :n].std()) - 1.0) < 0.1
    else:
        snr = 10 * torch.log10(x.pow(2).sum() / (x - y).pow(2).sum())
        assert snr >= min_snr_db


def test_block_reading_equals_whole_read(tmp_path):
    x = signal(seconds=2.0)
    write_audio(tmp_path / "x.wav", x, SR, bit_depth="32f")
    blocks = list(iter_audio_blocks(tmp_path / "x.wav", 10_000))
    assert all(b.shape[-1] <= 10_000 for b in blocks) and len(blocks) == 9
    assert torch.equal(torch.cat(blocks, -1), read_audio(tmp_path / "x.wav")[0])


def test_levels_of_a_known_sine(tmp_path):
    write_audio(tmp_path / "x.wav", signal(channels=1, seconds=1.0), SR, bit_depth="32f")
    levels = measure_levels(tmp_path / "x.wav")
    assert levels.peak_dbfs == pytest.approx(20 * math.log10(0.5), abs=0.01)
    assert levels.rms_dbfs == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.01)
    assert levels.floor_dbfs == pytest.approx(levels.rms_dbfs, abs=0.1)


def bad_file(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "missing":
        return path, "no such file"
    if kind == "text":
        path.write_text("this is not audio\n")
        return path, "not a readable audio file"
    if kind == "empty":
        sf.write(path, np.zeros((0, 1), dtype=np.float32), SR, subtype="FLOAT")
        return path, "holds no samples"
    if kind == "nan":
        data = np.zeros((1000, 1), dtype=np.float32)
        data[700] = np.nan
        sf.write(path, data, SR, subtype="FLOAT")
        return path, "sample 700 is NaN or infinite"
    if kind == "channels":
        sf.write(path, np.zeros((100, 3), dtype=np.float32), SR)
        return path, "3 channels are not supported"
    if kind == "rate":
        sf.write(path, np.zeros((100, 1), dtype=np.float32), 8000)
        return path, "sample rate 8000 Hz is not accepted"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "nan", "channels", "rate"])
def test_bad_inputs_raise_one_sentence_naming_the_file(tmp_path, kind):
    path, message = bad_file(tmp_path, kind)
    with pytest.raises(AudioError, match=message) as err:
        read_audio(path, max_channels=2, sample_rates=[44100, 48000])
    text = str(err.value)
    assert text.startswith(str(path)) and text.endswith(".") and "\n" not in text
    if kind == "nan":
        with pytest.raises(AudioError, match="NaN"):
            list(iter_audio_blocks(path, 256))


def test_write_is_atomic_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(RuntimeError):
        with AudioWriter(target, SR, 1) as writer:
            writer.write(torch.zeros(1, 1000))
            assert not target.exists()  # samples go to a temporary name first
            raise RuntimeError("the model failed half-way")
    assert os.listdir(tmp_path) == []
    bad = torch.zeros(1, 10)
    bad[0, 3] = float("inf")
    with pytest.raises(AudioError, match="NaN or infinite"):
        write_audio(target, bad, SR)
    assert os.listdir(tmp_path) == []


def test_refuses_to_overwrite_an_input(tmp_path):
    path = tmp_path / "in.wav"
    write_audio(path, signal(), SR)
    before = path.read_bytes()
    with pytest.raises(AudioError, match="refusing to overwrite an input"):
        write_audio(tmp_path / "." / "in.wav", signal() * 0, SR, inputs=[path])
    assert path.read_bytes() == before


def test_integer_formats_clip_and_count(tmp_path):
    x = torch.tensor([[0.0, 1.5, -2.0, 0.5, 1.0]])
    assert write_audio(tmp_path / "c.wav", x, SR, bit_depth="16") == 3  # 1.0 does not fit in 16-bit either
    y, _ = read_audio(tmp_path / "c.wav")
    assert float(y.max()) == pytest.approx(1 - 2**-15) and float(y.min()) == -1.0
    assert write_audio(tmp_path / "f.wav", x, SR, bit_depth="32f") == 0
    assert torch.equal(read_audio(tmp_path / "f.wav")[0], x)


def test_write_errors(tmp_path):
    with pytest.raises(AudioError, match=r"only write \.wav, \.flac, \.ogg, \.mp3 files"):
        write_audio(tmp_path / "x.aiff", signal(), SR)
    with pytest.raises(AudioError, match="FLAC holds"):
        write_audio(tmp_path / "x.flac", signal(), SR, bit_depth="32f")
    with pytest.raises(AudioError, match="does not exist"):
        write_audio(tmp_path / "no" / "x.wav", signal(), SR)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_the_mode_a_plain_write_gives(tmp_path, umask):
    """The temporary file of an atomic write is 0600: the renamed output kept that whatever the umask."""
    old = os.umask(umask)
    try:
        write_audio(tmp_path / "x.wav", signal(), SR)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "x.wav").st_mode) == 0o666 & ~umask


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_folder_is_one_sentence_naming_the_users_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(AudioError, match=rf"^{folder / 'o.wav'}: cannot write in the folder {folder} \("):
            write_audio(folder / "o.wav", signal(), SR)
    finally:
        folder.chmod(0o755)


def test_an_unwritable_folder_as_root(tmp_path, monkeypatch):
    """Root ignores permission bits (and `chattr +i` needs a file system that has it), so refuse the temporary file
    the way an immutable folder does."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted", str(tmp_path / ".o.wav.abc.part"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(AudioError) as err:
        write_audio(tmp_path / "o.wav", signal(), SR)
    assert str(err.value) == f"{tmp_path / 'o.wav'}: cannot write in the folder {tmp_path} (Operation not permitted)."
    assert ".part" not in str(err.value)


@pytest.mark.parametrize("suffix", [".ogg", ".mp3"])
def test_lossy_formats_are_written_and_read_back(tmp_path, suffix):
    t = torch.arange(SR) / SR
    x = (0.5 * torch.sin(2 * math.pi * 440 * t))[None].expand(2, -1).contiguous()
    assert write_audio(tmp_path / f"x{suffix}", 3.0 * x, SR) > 0  # clipped to [-1, 1] and counted
    write_audio(tmp_path / f"y{suffix}", x, SR)
    y, rate = read_audio(tmp_path / f"y{suffix}")
    assert rate == SR and y.shape[0] == 2 and abs(y.shape[-1] - SR) <= 2000  # MP3 pads with encoder delay
    level = 20 * torch.log10(y.pow(2).mean().sqrt() / x.pow(2).mean().sqrt())
    assert abs(float(level)) <= 1.0


def test_resample_keeps_a_tone(tmp_path):
    t = torch.arange(SR) / SR
    x = (0.5 * torch.sin(2 * math.pi * 1000 * t))[None].float()
    y = resample(x, SR, 48000)
    assert y.shape == (1, 48000)
    t48 = torch.arange(48000) / 48000
    expected = 0.5 * torch.sin(2 * math.pi * 1000 * t48)
    assert (y[0, 2000:-2000] - expected[2000:-2000]).abs().max() <= 1e-3
    write_audio(tmp_path / "x.wav", x.expand(2, -1), SR, bit_depth="32f")
    y2, rate = read_audio(tmp_path / "x.wav", sample_rate=16000, channels=1)
    assert rate == 16000 and y2.shape == (1, 16000)


def test_channel_conversion():
    stereo = torch.stack([torch.ones(10), -torch.ones(10) * 0.5])
    assert torch.allclose(convert_channels(stereo, 1), torch.full((1, 10), 0.25))
    assert convert_channels(stereo[:1], 2).shape == (2, 10)
    with pytest.raises(AudioError, match="cannot convert 3 channels to 2"):
        convert_channels(torch.zeros(3, 10), 2)
