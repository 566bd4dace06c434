"""The scripts in benchmarks/ run end to end on small inputs and report consistent figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rtag.bundle import save_bundle
from rtag.config import ModelConfig, load_yaml
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.networks import build_network
from tests.conftest import CONFIGS, REPO_ROOT


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_engine_accuracy_scores_each_engine_against_the_first(
    tmp_path: Path, real_data: Path, real_manifest: list[dict[str, str]]
) -> None:
    config = load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)
    torch.manual_seed(7)
    bundle = save_bundle(tmp_path / "tiny.rtag", build_network(config).eval(), config, FSDKAGGLE2018_LABELS)
    rows = [r for r in real_manifest if r["label"] in FSDKAGGLE2018_LABELS][:4]
    manifest = tmp_path / "manifest.csv"
    lines = [f"{real_data / r['path']},{r['label']},heldout,{'rendered' if i == 0 else 'strong'}" for i, r in enumerate(rows)]
    manifest.write_text("path,label,split,quality\n" + "\n".join(lines) + "\n")
    out = tmp_path / "accuracy.json"
    result = _run("engine_accuracy.py", str(manifest), "--model", str(bundle), "--engines", "torch:fp32,onnx:fp32",
                  "--weightings", "energy,equal", "--json", str(out), "--confusion", str(tmp_path / "plots"))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["clips"] == 4
    reference, reference_equal, onnx, onnx_equal = figures["results"]
    assert [r["weighting"] for r in figures["results"]] == ["energy", "equal"] * 2
    assert reference["top1 agreement"] == 1.0 and reference["map3 change"] == 0.0
    assert onnx["max prob diff"] < 1e-4 and onnx["top1 agreement"] == 1.0
    assert onnx_equal["engine"] == "onnx:fp32" and abs(onnx_equal["map3 all"] - reference_equal["map3 all"]) < 1e-9
    assert "1 renders, 3 real" in result.stdout
    for name in ("heldout_confusion_renders.png", "heldout_confusion_real.png"):  # one per group, from fp32
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.slow
def test_stream_latency_reports_windows_and_percentiles() -> None:
    result = _run("stream_latency.py", "--config", str(CONFIGS / "model" / "comb_tiny.yaml"), "--duration-s", "2",
                  "--precision", "bf16", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["engine"].startswith("torch bf16 on cpu") and figures["stream_windows"] >= 1
    assert figures["latency_ms_p99"] >= figures["latency_ms_p50"] > 0


@pytest.mark.slow
def test_cli_speed_times_rtag_tag_on_a_long_and_a_short_recording(tmp_path: Path, real_data: Path) -> None:
    result = _run("cli_speed.py", "--data", str(real_data), "--work", str(tmp_path), "--repeats", "1",
                  "--flags=--fast --timeline")
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[-1].strip("|").split("|")
    assert row[0].strip() == "`--fast --timeline`"
    long_s, short_s, per_minute = (float(cell) for cell in row[1:])
    # the times are printed to 0.01 s and the rate to 0.001: (0.005 + 0.005) / (290 / 60) + 0.0005 apart at most
    assert long_s > short_s > 0 and per_minute == pytest.approx((long_s - short_s) / (290 / 60), abs=2.6e-3)
    assert (tmp_path / "real-5min.wav").stat().st_size > 300 * 44100 * 2


@pytest.mark.slow
def test_event_onsets_scores_every_scheme_on_the_demo_and_real_clips(tmp_path: Path, real_data: Path) -> None:
    result = _run("event_onsets.py", "--data", str(real_data), "--work", str(tmp_path), "--clips", "12", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {"demo", "real clips"}
    demo = figures["demo"]["window, hold K=3 (default)"]
    assert demo["sounds"] == 5 and 0 < demo["hits"] <= 5
    assert figures["real clips"]["window, K=1"]["sounds"] == 12
    # the window onset is never later than the mean alone on the same windows
    assert demo["onset_error_median_s"] <= figures["demo"]["smoothed K=3"]["onset_error_median_s"]
