import json

import pytest
import torch

from neuraudio.cli import main
from neuraudio.runtime.bench import bench_signal

KEYS = {"model", "device", "sample_rate", "block_size", "latency_samples", "budget_ms", "block_ms", "overruns",
        "offline_rtf"}


def test_bench_json_last_line_has_the_documented_figures(capsys):
    assert main(["bench", "spectral-gate", "--seconds", "0.5", "--block-size", "256", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert KEYS <= set(result)
    assert result["model"] == "spectral-gate" and result["device"] == "cpu"
    assert result["sample_rate"] == 48000 and result["block_size"] == 256
    assert result["budget_ms"] == pytest.approx(256 / 48000 * 1e3)
    assert result["blocks"] == 48000 // 2 // 256
    b = result["block_ms"]
    assert 0 < b["p50"] <= b["p99"] <= b["max"]
    assert 0 < result["offline_rtf"] < 10
    assert result["latency_samples"] == 1023
    assert "budget" in out[1] or "budget" in " ".join(out)


@pytest.mark.parametrize("argv, message", [
    (["bench", "no-such-model"], "unknown model"),
    (["bench", "spectral-gate", "--block-size", "0"], "--block-size"),
    (["bench", "spectral-gate", "--seconds", "-1"], "--seconds"),
])
def test_bench_bad_input_is_one_sentence_and_exit_1(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bench_cuda_without_gpu_is_refused(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["bench", "spectral-gate", "--device", "cuda"]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err


def test_bench_signal_is_deterministic_and_bounded():
    a, b = bench_signal(16000, 1.0, 2), bench_signal(16000, 1.0, 2)
    assert torch.equal(a, b) and a.shape == (2, 16000)
    assert 0.3 < float(a.abs().max()) <= 0.51
