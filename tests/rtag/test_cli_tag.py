"""``rtag tag``: the papers' test-time procedure per file, timelines, and unreadable files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtag.cli import main
from rtag.model import TaggerModel
from tests.fixtures.cli_runner import run_cli


@pytest.fixture()
def real_clip(tmp_path: Path, bark_clip: tuple[np.ndarray, str]) -> Path:
    """The real bark recording, as the user would pass it (a file on disk)."""
    audio, name = bark_clip
    path = tmp_path / name.replace(".flac", ".wav")
    sf.write(str(path), audio, 44100)
    return path


def test_tag_prints_the_top_three_of_the_test_time_procedure(
    tiny_bundle: Path, tiny_model: TaggerModel, real_clip: Path, bark_clip: tuple[np.ndarray, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["tag", str(real_clip), "--model", str(tiny_bundle), "--format", "jsonl"]) == 0
    record = json.loads(capsys.readouterr().out)
    expected = tiny_model.top_k(tiny_model.tag_clip(bark_clip[0], step_samples=5120), 3)
    assert record["path"] == str(real_clip)
    assert [t["label"] for t in record["top"]] == [label for label, _ in expected]
    assert [t["probability"] for t in record["top"]] == pytest.approx([p for _, p in expected], abs=1e-4)


def test_fast_mode_uses_the_51200_sample_step(
    tiny_bundle: Path, tiny_model: TaggerModel, real_clip: Path, bark_clip: tuple[np.ndarray, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["tag", str(real_clip), "--model", str(tiny_bundle), "--fast", "--format", "jsonl"]) == 0
    record = json.loads(capsys.readouterr().out)
    expected = tiny_model.top_k(tiny_model.tag_clip(bark_clip[0], step_samples=51200), 3)
    assert [t["probability"] for t in record["top"]] == pytest.approx([p for _, p in expected], abs=1e-4)


def test_timeline_lists_every_window_as_csv(
    tiny_bundle: Path, tiny_model: TaggerModel, real_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tag", str(real_clip), "--model", str(tiny_bundle), "--timeline", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    windows = (220500 - tiny_model.window_samples) // tiny_model.hop_samples + 1
    starts = sorted({float(r["start_s"]) for r in rows})
    assert starts == pytest.approx([i * tiny_model.hop_samples / 44100 for i in range(windows)])
    # a window of the clip's silent tail is one row with no label; every other window has three
    silent = [r for r in rows if r["silent"] == "true"]
    assert silent and all(r["rank"] == r["label"] == "" for r in silent)
    assert len(rows) == 3 * (windows - len(silent)) + len(silent)
    assert {r["rank"] for r in rows if r["silent"] == "false"} == {"1", "2", "3"}


def test_corrupt_file_is_reported_by_name_and_the_batch_goes_on(tiny_bundle: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    good = tmp_path / "noise.wav"
    sf.write(str(good), (np.random.default_rng(0).standard_normal(44100) * 0.1).astype(np.float32), 44100)
    result = run_cli(["tag", str(corrupt), str(good), "--model", str(tiny_bundle)])
    assert result.returncode == 1
    assert "corrupt.wav" in result.stderr and "cannot decode audio" in result.stderr
    assert "1 file(s) tagged, 1 could not be read" in result.stderr
    assert "Traceback" not in result.stderr
    assert str(good) in result.stdout and "corrupt.wav" not in result.stdout


def test_tag_and_listen_write_one_json_lines_schema_and_round_times_alike(
    tiny_bundle: Path, real_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tag", str(real_clip), "--model", str(tiny_bundle), "--timeline", "--format", "jsonl"]) == 0
    tagged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["tag", str(real_clip), "--model", str(tiny_bundle), "--timeline", "--format", "csv"]) == 0
    csv_rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    out = tmp_path / "listen.jsonl"
    assert main(["listen", "--model", str(tiny_bundle), "--source", str(real_clip), "--fast", "--jsonl", str(out)]) == 0
    capsys.readouterr()
    listened = [r for r in map(json.loads, out.read_text().splitlines()) if r["type"] == "window"]

    for record in [*tagged, *listened]:
        for key in ("top", *(["top_smoothed"] if "top_smoothed" in record else [])):
            assert all(set(entry) == {"label", "probability"} for entry in record[key]), record
    sounding = [r for r in tagged if not r["silent"]]
    assert sounding and all(len(r["top"]) == 3 for r in sounding)
    # the same windows, the same times, written the same way everywhere
    assert [(r["start_s"], r["end_s"]) for r in tagged] == [(r["start_s"], r["end_s"]) for r in listened]
    assert {(float(r["start_s"]), float(r["end_s"])) for r in csv_rows} == {(r["start_s"], r["end_s"]) for r in tagged}
    assert all(len(r["start_s"].split(".")[1]) == 4 for r in csv_rows)


def test_a_progress_bar_is_drawn_on_a_terminal_only(tiny_bundle: Path, real_clip: Path) -> None:
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from tests.conftest import REPO_ROOT

    command = [sys.executable, "-m", "rtag.cli", "tag", str(real_clip), str(real_clip), "--model", str(tiny_bundle),
               "--format", "jsonl"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    piped = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert "%|" not in piped.stderr and "file/s" not in piped.stderr and len(piped.stdout.splitlines()) == 2

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    with subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=terminal, text=True) as child:
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            drawn += chunk
        stdout = child.stdout.read() if child.stdout else ""
    os.close(controller)
    assert child.returncode == 0
    assert b"%|" in drawn and real_clip.name.encode() in drawn  # the file's bar, in audio seconds
    assert len(stdout.splitlines()) == 2  # the results are the same, on stdout
