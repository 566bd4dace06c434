"""``rtag listen`` without a device: file replay, argument errors, and no input device at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtag.cli import main
from rtag.sources import DeviceError
from tests.fixtures.cli_runner import run_cli


@pytest.fixture()
def noise_file(tmp_path: Path) -> Path:
    path = tmp_path / "noise.wav"
    sf.write(str(path), (np.random.default_rng(0).standard_normal(2 * 44100) * 0.1).astype(np.float32), 44100)
    return path


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_listen_replays_a_file_fast_into_json_lines(
    tiny_bundle: Path, noise_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    out = tmp_path / "out.jsonl"
    code = main(
        ["listen", "--model", str(tiny_bundle), "--source", str(noise_file), "--fast", "--jsonl", str(out),
         "--set", f"engine={engine}"]
    )
    assert code == 0
    windows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["start_sample"] for w in windows if w["type"] == "window"] == [i * 11025 for i in range(7)]
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 7
    assert "7 tagged, 0 dropped, 0 skipped" in captured.err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_failed_json_lines_write_is_an_error_not_a_callback_count(
    tiny_bundle: Path, noise_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["listen", "--model", str(tiny_bundle), "--source", str(noise_file), "--fast", "--jsonl", "/dev/full"])
    assert code == 1
    err = capsys.readouterr().err
    assert "rtag listen: error: --jsonl /dev/full: write failed" in err and "No space left on device" in err
    assert "callback errors: 0" in err


def test_fast_without_a_source_is_refused(tiny_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["listen", "--model", str(tiny_bundle), "--fast"]) == 2
    assert "--fast needs --source" in capsys.readouterr().err


def test_no_input_device_says_so_and_names_source(tiny_bundle: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "XDG_RUNTIME_DIR")}
    env["PULSE_SERVER"] = "unix:/nonexistent/rtag-no-pulse"
    devices = run_cli(["devices"], env)
    if devices.returncode == 0:
        pytest.skip(f"this machine has real input devices:\n{devices.stdout}")
    assert devices.returncode == 1 and "no audio input device" in devices.stderr
    as_json = run_cli(["devices", "--json"], env)
    assert as_json.returncode == 1 and json.loads(as_json.stdout) == []
    result = run_cli(["listen", "--model", str(tiny_bundle)], env)
    assert result.returncode == 2
    assert "no audio input device" in result.stderr and "--source" in result.stderr


def test_devices_json_stays_json_when_the_audio_system_cannot_be_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import rtag.commands.devices

    def no_portaudio() -> list:
        raise DeviceError("cannot use audio devices: PortAudio is not available (libportaudio.so.2: not found)")

    monkeypatch.setattr(rtag.commands.devices, "list_input_devices", no_portaudio)
    assert main(["devices", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [] and "PortAudio is not available" in captured.err
    assert main(["devices"]) == 2
    assert "rtag devices: error: cannot use audio devices" in capsys.readouterr().err
