"""Every script in examples/ runs against a model bundle and a recording and does its job."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("examples") / "noise.wav"
    sf.write(str(path), (np.random.default_rng(1).standard_normal(int(1.5 * 44100)) * 0.1).astype(np.float32), 44100)
    return path


@pytest.fixture(scope="module")
def always_on_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Thresholds at zero: every label starts at the first window (the model has random weights)."""
    path = tmp_path_factory.mktemp("examples") / "runtime.yaml"
    path.write_text("on_threshold: 0.0\noff_threshold: 0.0\n")
    return path


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_print_tags_prints_one_line_per_window(tiny_bundle: Path, recording: Path) -> None:
    out = run_example("print_tags.py", "--model", str(tiny_bundle), "--source", str(recording)).stdout
    window_lines = [line for line in out.splitlines() if "dBFS" in line]
    assert len(window_lines) == 5
    assert out.splitlines()[-1].startswith("5 windows, 0 dropped")


def test_trigger_fires_once_for_the_chosen_class(tiny_bundle: Path, recording: Path) -> None:
    out = run_example(
        "trigger_on_class.py", "--model", str(tiny_bundle), "--label", "Bark", "--source", str(recording),
        "--on-threshold", "0", "--off-threshold", "0",
    ).stdout
    assert out.count("ALERT: Bark at 0.00 s") == 1
    assert "1 alert(s) for Bark" in out


def test_collect_timeline_writes_closed_intervals(tiny_bundle: Path, recording: Path, always_on_config: Path) -> None:
    out = run_example(
        "collect_timeline.py", "--model", str(tiny_bundle), "--config", str(always_on_config), str(recording)
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 41
    assert {(r["start_s"], r["end_s"]) for r in rows} == {("0.00", f"{(4 * 11025 + 22050) / 44100:.2f}")}


def test_asyncio_example_receives_every_event(tiny_bundle: Path, recording: Path, always_on_config: Path) -> None:
    out = run_example(
        "asyncio_events.py", "--model", str(tiny_bundle), "--source", str(recording), "--config", str(always_on_config)
    ).stdout
    assert out.count("[async]") == 82
    assert out.splitlines()[-1] == "82 events"
