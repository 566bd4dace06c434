"""Bad runtime configs and bundles from a newer rtag, through the command line: exit code 2,
one line naming the key, file or version, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtag.bundle import FORMAT_VERSION
from rtag.cli import main
from tests.fixtures.cli_runner import run_cli
from tests.rtag.test_bundle import rewrite_metadata


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("hop_samples: 1000\nsmoothing_windowz: 3\n", "unknown key 'smoothing_windowz'"),
        ("queue_windows: four\n", "'queue_windows'"),
        ("on_threshold: [0.5]\n", "'on_threshold'"),
    ],
    ids=["unknown-key", "wrong-type-int", "wrong-type-float"],
)
def test_listen_refuses_a_bad_runtime_config_naming_file_and_key(
    tiny_bundle: Path, tmp_path: Path, yaml_text: str, expected: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    result = run_cli(["listen", "--model", str(tiny_bundle), "--config", str(config)])
    assert result.returncode == 2, result.stderr
    assert str(config) in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_listen_names_a_missing_config_file(tiny_bundle: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = run_cli(["listen", "--model", str(tiny_bundle), "--config", str(missing)])
    assert result.returncode == 2 and str(missing) in result.stderr and "Traceback" not in result.stderr


def test_listen_names_a_bad_override_key(tiny_bundle: Path) -> None:
    result = run_cli(["listen", "--model", str(tiny_bundle), "--set", "hop_sample=10"])
    assert result.returncode == 2 and "'hop_sample'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["info", "tag", "listen"])
def test_a_bundle_from_a_newer_rtag_names_its_version(tiny_bundle: Path, tmp_path: Path, command: str) -> None:
    newer = rewrite_metadata(tiny_bundle, format_version=str(FORMAT_VERSION + 1))
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.zeros(4410, np.float32), 44100)
    arguments = {"info": [str(newer)], "tag": [str(clip), "--model", str(newer)],
                 "listen": ["--source", str(clip), "--model", str(newer)]}[command]
    result = run_cli([command, *arguments])
    assert result.returncode == 2, result.stderr
    assert str(newer) in result.stderr and f"bundle format {FORMAT_VERSION + 1}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_bundle_is_named(tmp_path: Path) -> None:
    result = run_cli(["info", str(tmp_path / "absent.rtag")])
    assert result.returncode == 2 and "absent.rtag" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["tag", "listen"])
def test_top_k_of_zero_is_a_usage_error(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--top-k", "0", *(["x.wav"] if command == "tag" else [])])
    assert exited.value.code == 2
    assert "--top-k: must be at least 1, not 0" in capsys.readouterr().err
