import json

import pytest
import torch

import neuraudio
from neuraudio.datasets import augment
from neuraudio.datasets.common import DataError, split_names
from neuraudio.datasets.echo import EchoFolder, EchoSet
from neuraudio.datasets.effects import EffectsFolder, EffectsTrainSet, EffectsValSet, split_segments
from neuraudio.datasets.enhancement import EnhancementFolder, EnhancementSet
from neuraudio.datasets.separation import SeparationFolder, SeparationSet
from neuraudio.datasets.vocoder import VocoderFolder, VocoderSet

SR = 8000


def write(path, x, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    neuraudio.write_audio(path, x, sr, bit_depth="24" if path.suffix == ".flac" else "32f")


def effects_dir(tmp_path, seconds=20, knobs=({"gain": 0.0}, {"gain": 1.0})):
    n = seconds * SR
    ramp = (torch.arange(n, dtype=torch.float64) / n).float()[None]  # the value tells the position
    write(tmp_path / "input.wav", ramp)
    for i, k in enumerate(knobs):
        write(tmp_path / f"take{i}" / "output.wav", ramp * (1 + i))
        if k is not None:
            (tmp_path / f"take{i}" / "knobs.json").write_text(json.dumps(k))
    return tmp_path, n


def test_split_names_is_seeded_disjoint_and_order_independent():
    names = [f"song{i:03d}" for i in range(50)]
    train, val = split_names(names, 0.2, seed=7)
    assert len(val) == 10 and not set(train) & set(val) and set(train) | set(val) == set(names)
    assert split_names(list(reversed(names)), 0.2, seed=7) == (train, val)
    assert split_names(names, 0.2, seed=8)[1] != val
    assert len(split_names(["a", "b"], 0.01, 0)[1]) == 1


def test_effects_crops_never_touch_validation_segments(tmp_path):
    root, n = effects_dir(tmp_path)
    folder = EffectsFolder(root, SR)
    assert folder.knob_names == ["gain"] and len(folder.takes) == 2
    train, val = split_segments(folder.frames, 2 * SR, 0.2, seed=3)
    assert len(val) == 2 and len(train) == 8
    dataset = EffectsTrainSet(folder, train, crop=SR // 2, warmup=SR // 10, crops_per_epoch=300)
    val_ranges = [(a / n, b / n) for a, b in val]
    for i in range(300):
        item = dataset[i]
        first, last = float(item["input"][0, 0]), float(item["input"][0, -1])
        assert item["input"].shape == (1, SR // 2 + SR // 10) and item["mask"][0, : SR // 10].sum() == 0
        assert not any(first < b and last >= a for a, b in val_ranges)
        gain = float(item["knobs"][0])
        assert torch.allclose(item["target"], item["input"] * (1 + gain))
    val_set = EffectsValSet(folder, val, warmup=SR // 10)
    assert len(val_set) == 4  # 2 segments x 2 takes


def test_effects_ignore_ranges_become_the_mask(tmp_path):
    root, _ = effects_dir(tmp_path)
    (root / "ignore.json").write_text(json.dumps({"ranges": [[0, 800], [5000, 5100]]}))
    folder = EffectsFolder(root, SR)
    assert folder.mask[:800].sum() == 0 and folder.mask[5000:5100].sum() == 0 and folder.mask[800:5000].all()


@pytest.mark.parametrize("case,message", [
    ("no-input", "no input"), ("no-output", "no output"), ("mixed-knobs", "takes name different knobs"),
    ("bad-ignore", "each range must be"), ("text-knob", "must be a number"), ("short-take", "whole input"),
])
def test_effects_folder_errors_name_the_file(tmp_path, case, message):
    root, n = effects_dir(tmp_path, seconds=2)
    if case == "no-input":
        (root / "input.wav").unlink()
    elif case == "no-output":
        (root / "take9").mkdir()
    elif case == "mixed-knobs":
        (root / "take1" / "knobs.json").write_text(json.dumps({"drive": 1.0}))
    elif case == "bad-ignore":
        (root / "ignore.json").write_text(json.dumps({"ranges": [[10]]}))
    elif case == "text-knob":
        (root / "take0" / "knobs.json").write_text(json.dumps({"gain": "high"}))
    elif case == "short-take":
        write(root / "take0" / "output.wav", torch.zeros(1, n // 2))
    with pytest.raises(DataError, match=message) as err:
        EffectsFolder(root, SR)
    assert str(tmp_path) in str(err.value)


def test_separation_any_stem_names_and_mixture_is_the_sum(tmp_path):
    for song in ("a", "b", "c"):
        for stem in ("kick", "voice"):
            write(tmp_path / song / f"{stem}.wav", 0.1 * torch.randn(2, SR))
    folder = SeparationFolder(tmp_path, SR, channels=2)
    assert folder.stems == ["kick", "voice"]
    train, val = split_names(list(folder.songs), 0.34, 0)
    item = SeparationSet(folder, train, crop=SR // 2, count=4)[0]
    assert item["stems"].shape == (2, 2, SR // 2) and torch.allclose(item["mixture"], item["stems"].sum(0))
    whole = SeparationSet(folder, val, None)[0]
    assert whole["stems"].shape[-1] == SR
    with pytest.raises(DataError, match="not among the recipe's stems"):
        SeparationFolder(tmp_path, SR, 2, stems=["kick"])


def test_echo_clips_are_cropped_in_step(tmp_path):
    for clip in ("c1", "c2"):
        base = torch.arange(SR, dtype=torch.float32)[None] / SR
        for k, part in enumerate(("mic", "ref", "target")):
            write(tmp_path / clip / f"{part}.wav", base + k)
    folder = EchoFolder(tmp_path, SR)
    item = EchoSet(folder, ["c1", "c2"], crop=1000, count=3)[1]
    assert torch.allclose(item["ref"] - item["mic"], torch.ones(1, 1000)) and item["mic"].shape == (1, 1000)
    (tmp_path / "c2" / "ref.wav").unlink()
    with pytest.raises(DataError, match="ref.wav is missing"):
        EchoFolder(tmp_path, SR)


def test_enhancement_mixes_at_the_asked_snr_and_validation_is_fixed(tmp_path):
    for i in range(4):
        write(tmp_path / "clean" / f"u{i}.wav", 0.1 * torch.randn(1, SR))
    write(tmp_path / "noise" / "n.wav", 0.3 * torch.randn(1, 3 * SR))
    folder = EnhancementFolder(tmp_path, SR)
    train = EnhancementSet(folder, ["u0", "u1"], crop=SR // 2, snr_db=(10.0, 10.0), count=5)
    item = train[0]
    noise = item["noisy"] - item["clean"]
    assert 10 * torch.log10(item["clean"].pow(2).mean() / noise.pow(2).mean()) == pytest.approx(10.0, abs=0.01)
    val = EnhancementSet(folder, ["u2", "u3"], None, seed=0)
    state = torch.get_rng_state()
    assert torch.equal(val[1]["noisy"], val[1]["noisy"])
    assert torch.equal(torch.get_rng_state(), state)  # validation does not disturb training randomness
    (tmp_path / "noise" / "n.wav").unlink()
    with pytest.raises(DataError, match="holds no audio files"):
        EnhancementFolder(tmp_path, SR)


def test_vocoder_folder_recurses_and_resamples(tmp_path):
    write(tmp_path / "a" / "x.wav", 0.1 * torch.randn(1, SR))
    write(tmp_path / "b" / "c" / "y.flac", 0.1 * torch.randn(1, 2 * 16000)[:, :16000], sr=16000)
    folder = VocoderFolder(tmp_path, SR)
    assert sorted(folder.clips) == ["a/x.wav", "b/c/y.flac"]
    assert folder.clips["b/c/y.flac"].frames == SR  # 16 kHz file resampled to 8 kHz on load
    assert VocoderSet(folder, list(folder.clips), crop=800, count=2)[0]["audio"].shape == (1, 800)


def test_augment_hooks():
    x = torch.randn(1, 4000)
    assert augment.random_gain(x, 6.0, 6.0).std() / x.std() == pytest.approx(10 ** (6 / 20), rel=1e-4)
    y = augment.random_tilt(x)
    assert y.shape == x.shape and 0.3 < float(y.std() / x.std()) <= 1.01


def test_crops_avoid_mostly_ignored_regions_and_takes_can_be_selected(tmp_path):
    root, n = effects_dir(tmp_path, seconds=20)
    # ignore 0.3 s of every 0.6 s, like a simulator's start-up transient at each clip
    clip = int(0.6 * SR)
    (root / "ignore.json").write_text(json.dumps({"ranges": [[s, s + clip // 2] for s in range(0, n, clip)]}))
    folder = EffectsFolder(root, SR, takes=["take1"])
    assert [name for name, _, _ in folder.takes] == ["take1"]
    train, _ = split_segments(folder.frames, 2 * SR, 0.2, seed=3)
    dataset = EffectsTrainSet(folder, train, crop=SR // 10, warmup=SR // 50, crops_per_epoch=200)
    shares = [float(dataset[i]["mask"][0, SR // 50 :].mean()) for i in range(200)]
    assert min(shares) >= 0.5 and sum(shares) / len(shares) > 0.7
    with pytest.raises(DataError, match="no take folder named take7"):
        EffectsFolder(root, SR, takes=["take7"])
