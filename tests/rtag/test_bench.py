"""``rtag bench``: every engine measured on the same model, figures consistent with each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from rtag.bench import matmul_peak_gflops, window_flops
from rtag.cli import main
from rtag.config import ModelConfig, load_yaml
from rtag.networks import build_network
from tests.conftest import CONFIGS


def test_window_flops_counts_convolutions_and_dense_layers() -> None:
    net = nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 10, 5))
    assert window_flops(_Unsqueezed(net), 10) == 2 * (3 * 4 * 10) + 2 * (40 * 5)


class _Unsqueezed(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.inner(audio.unsqueeze(1))


def test_two_second_comb_costs_about_9_7_gflop_per_window() -> None:
    network = build_network(load_yaml(CONFIGS / "model" / "comb_2s.yaml", ModelConfig)).eval()
    assert window_flops(network, 88200) / 1e9 == pytest.approx(9.67, abs=0.05)


def test_matmul_peak_is_positive() -> None:
    assert matmul_peak_gflops(torch.float32, size=256, seconds=0.05) > 0


@pytest.mark.slow
def test_bench_command_reports_every_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = main(
        ["bench", "--config", str(CONFIGS / "model" / "comb_tiny.yaml"), "--audio-s", "5", "--stream-s", "2",
         "--device", "cpu", "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert [(row["engine"], row["precision"]) for row in report["engines"]] == [
        ("torch", "fp32"),
        ("torch", "bf16"),
        ("onnx", "fp32"),
    ]
    for row in report["engines"]:
        assert row["windows"] > 0 and row["s_per_audio_minute"] > 0
        assert row["s_per_audio_minute"] == pytest.approx(row["seconds"] * 60 / 5, rel=1e-6)
        assert row["gflops"] == pytest.approx(
            report["model"]["gflop_per_window"] / (row["ms_per_window"] / 1000), rel=1e-6
        )
        assert row["stream_windows"] >= 1 and row["latency_ms_p99"] >= row["latency_ms_p50"] > 0
    assert report["engines"][1]["runs_on"] == "torch-cpu-bf16"
    assert report["engines"][2]["runs_on"].startswith("onnxruntime-")
    printed = capsys.readouterr().out
    assert "s/audio-min" in printed and "torch-cpu-fp32" in printed
    assert "onnx:int8 left out" in printed


def test_unknown_engine_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--config", str(CONFIGS / "model" / "comb_tiny.yaml"), "--engines", "tpu"]) == 2
    assert "unknown engine 'tpu'" in capsys.readouterr().err
    assert main(["bench", "--config", str(CONFIGS / "model" / "comb_tiny.yaml"), "--engines", "torch:int8"]) == 2
    assert "engine 'torch' has no precision 'int8'" in capsys.readouterr().err
