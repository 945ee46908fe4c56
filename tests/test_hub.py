import json
import pickle

import pytest
import torch

import neuraudio
from neuraudio import hub
from neuraudio.effects.linear import LinearEffect
from neuraudio.hub import ModelError


@pytest.fixture
def folder(tmp_path):
    model = LinearEffect(16000, 32, bias=True)
    with torch.no_grad():
        model.taps.copy_(torch.linspace(0.5, -0.5, 32))
        model.bias.fill_(0.01)
    return hub.save_folder(model, tmp_path / "lin", name="lin", task="effect", training={"command": "test"}), model


def test_save_then_load_gives_identical_outputs(folder):
    path, model = folder
    loaded = neuraudio.load(path)
    x = torch.randn(2, 3000)
    assert torch.equal(loaded.process(x), model.process(x))
    config = json.loads((path / "config.json").read_text())
    assert config["format_version"] == 1 and config["class"] == "neuraudio.effects.linear:LinearEffect"
    assert config["kwargs"] == {"sample_rate": 16000, "receptive_field": 32, "bias": True}
    assert config["weights_sha256"] == hub.sha256(path / "model.safetensors")
    assert (path / "README.md").is_file() and not loaded.training


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def _rehash(path):
    _edit_config(path, weights_sha256=hub.sha256(path / "model.safetensors"))


def test_corrupted_weights_fail_the_hash_check(folder):
    path, _ = folder
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-3] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 does not match"):
        neuraudio.load(path)


def test_truncated_weights_with_matching_hash_are_not_safetensors(folder):
    path, _ = folder
    (path / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes()[:40])
    _rehash(path)
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        neuraudio.load(path)


def test_unknown_format_version(folder):
    path, _ = folder
    _edit_config(path, format_version=99)
    with pytest.raises(ModelError, match="format_version 99 is not supported"):
        neuraudio.load(path)


def test_missing_tensor_is_named(folder):
    from safetensors.torch import save_file

    path, model = folder
    save_file({"taps": model.taps.detach()}, str(path / "model.safetensors"))
    _rehash(path)
    with pytest.raises(ModelError, match="missing: bias"):
        neuraudio.load(path)


def test_classes_outside_neuraudio_are_refused(folder):
    path, _ = folder
    _edit_config(path, **{"class": "os:system"})
    with pytest.raises(ModelError, match="not a neuraudio model class"):
        neuraudio.load(path)


class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(ModelError, match="never pickled or checkpoint files"):
        neuraudio.load(evil)
    # a pickle disguised as the weights of a folder
    folder = tmp_path / "disguised"
    hub.save_folder(LinearEffect(16000, 4), folder, name="d", task="effect")
    (folder / "model.safetensors").write_bytes(evil.read_bytes())
    _rehash(folder)
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        neuraudio.load(folder)
    assert not marker.exists()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ModelError, match="known name.*spectral-gate"):
        neuraudio.load("no-such-model")


def test_save_refuses_a_non_empty_folder(folder):
    path, model = folder
    with pytest.raises(ModelError, match="already exists"):
        hub.save_folder(model, path, name="x", task="effect")


def test_shipped_models_are_listed(folder, monkeypatch, tmp_path):
    path, _ = folder
    monkeypatch.setattr(hub, "pretrained_root", lambda: tmp_path)
    rows = {r["name"]: r for r in neuraudio.list_models()}
    assert rows["lin"]["sample_rate"] == 16000 and rows["lin"]["latency"] == 0 and "spectral-gate" in rows
    assert torch.equal(neuraudio.load("lin").taps, neuraudio.load(path).taps)


def test_every_shipped_folder_is_named_as_its_folder():
    """A reshipped folder once kept its training export's name in config.json."""
    root = hub.pretrained_root()
    for config in sorted(root.glob("*/config.json")):
        assert json.loads(config.read_text())["name"] == config.parent.name, config
