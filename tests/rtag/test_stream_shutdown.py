"""Stopping: Ctrl-C on ``rtag listen`` and ``StreamTagger.stop()`` end within a second, with the
JSON lines complete and no thread left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtag.model import TaggerModel
from rtag.sinks import JsonLinesWriter
from rtag.sources import ArraySource, FileSource, MicSource
from rtag.stream import StreamTagger
from tests.conftest import REPO_ROOT
from tests.fixtures.virtual_mic import VirtualMic

STOP_LIMIT_S = 1.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _noise_file(path: Path, seconds: float) -> Path:
    audio = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 44100))).astype(np.float32)
    sf.write(path, audio, 44100, subtype="PCM_16")
    return path


def _check_json_lines(path: Path, hop_samples: int) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n"), "the last line is complete"
    records = [json.loads(line) for line in text.splitlines()]  # every line is valid JSON
    windows = [r for r in records if r["type"] == "window"]
    assert [w["start_sample"] for w in windows] == [i * hop_samples for i in range(len(windows))]
    return records


def _rtag_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rtag-")]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_on_listen_ends_within_a_second_with_complete_json_lines(
    tiny_bundle: Path, tiny_model: TaggerModel, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    source = _noise_file(tmp_path / "long.wav", 60.0)
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "rtag", "listen", "--model", str(tiny_bundle), "--source", str(source),
         "--jsonl", str(out)],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "listening to long.wav" in process.stderr.readline()  # type: ignore[union-attr]
        time.sleep(2.0)  # real-time replay: several windows
        written = out.read_text()
        assert written.count("\n") >= 4 and written.endswith("\n"), "lines are written as they are made"
        interrupted_s = time.monotonic()
        process.send_signal(stop_signal)
        summary = process.stderr.readline()  # type: ignore[union-attr]
        stopped_s = time.monotonic() - interrupted_s  # the stream has stopped and the sinks are closed
        code = process.wait(timeout=10)
        exited_s = time.monotonic() - interrupted_s
        stderr = summary + process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
    print(f"rtag listen: stopped {stopped_s * 1000:.0f} ms, exited {exited_s * 1000:.0f} ms after {stop_signal.name}")
    assert code == 0, stderr
    assert "windows:" in summary and "Traceback" not in stderr
    assert stopped_s < STOP_LIMIT_S
    # exiting adds the interpreter's own teardown (about 0.5 s with torch loaded on a busy machine)
    assert exited_s < 2 * STOP_LIMIT_S
    records = _check_json_lines(out, tiny_model.hop_samples)
    assert len([r for r in records if r["type"] == "window"]) >= 4


@pytest.mark.parametrize("kind", ["array-realtime", "file-realtime", "file-lossless"])
def test_stop_ends_within_a_second_flushes_and_leaves_no_thread(
    tiny_model: TaggerModel, tmp_path: Path, kind: str
) -> None:
    path = _noise_file(tmp_path / "long.wav", 120.0)
    source = {
        "array-realtime": lambda: ArraySource(sf.read(path, dtype="float32")[0], realtime=True),
        "file-realtime": lambda: FileSource(path),
        "file-lossless": lambda: FileSource(path, realtime=False),
    }[kind]()
    out = tmp_path / "out.jsonl"
    threads_before = set(threading.enumerate())
    stream = StreamTagger(tiny_model, source, sinks=[JsonLinesWriter(out)]).start()
    stream.run_for(1.0)
    assert _rtag_threads(), "the stream's threads run"
    started_s = time.monotonic()
    stats = stream.stop()
    stop_s = time.monotonic() - started_s
    assert stop_s < STOP_LIMIT_S, f"stop() took {stop_s:.2f} s"
    assert set(threading.enumerate()) <= threads_before, _rtag_threads()
    records = _check_json_lines(out, tiny_model.hop_samples)
    assert len([r for r in records if r["type"] == "window"]) == stats.windows_processed > 0


@pytest.mark.device
def test_stop_of_a_device_being_reopened_ends_within_a_second(
    virtual_mic: VirtualMic, tiny_model: TaggerModel
) -> None:
    threads_before = set(threading.enumerate())
    source = MicSource(virtual_mic.capture_device, retry_initial_s=0.5, retry_max_s=2.0)
    stream = StreamTagger(tiny_model, source).start()
    try:
        stream.run_for(0.5)
        virtual_mic.kill()
        time.sleep(1.0)  # lost, and waiting between reopening attempts
        assert not stream.stats().device_connected
        started_s = time.monotonic()
        stream.stop()
        stop_s = time.monotonic() - started_s
    finally:
        virtual_mic.start()
    assert stop_s < STOP_LIMIT_S, f"stop() took {stop_s:.2f} s"
    assert set(threading.enumerate()) <= threads_before, _rtag_threads()
