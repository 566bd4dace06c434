"""The runtime config: shipped defaults, strict keys, validated values."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtag.config import ConfigError
from rtag.runtime_config import RuntimeConfig, load_runtime_config
from tests.conftest import CONFIGS


def test_shipped_default_yaml_equals_the_dataclass_defaults() -> None:
    assert load_runtime_config(CONFIGS / "runtime" / "default.yaml") == RuntimeConfig()


def test_overrides_apply_with_or_without_a_file() -> None:
    config = load_runtime_config(CONFIGS / "runtime" / "default.yaml", ["hop_samples=25600"])
    assert config.hop_samples == 25600
    assert load_runtime_config(None, ["smoothing_windows=5"]).smoothing_windows == 5


def test_unknown_key_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "runtime.yaml"
    path.write_text("hop_sample: 100\n")
    with pytest.raises(ConfigError, match=r"runtime.yaml: unknown key 'hop_sample'"):
        load_runtime_config(path)


def test_off_threshold_above_on_threshold_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runtime.yaml"
    path.write_text("on_threshold: 0.2\noff_threshold: 0.4\n")
    with pytest.raises(ConfigError, match="off_threshold"):
        load_runtime_config(path)


def test_precision_is_checked_against_the_engine() -> None:
    assert load_runtime_config(None, ["engine=onnx", "precision=int8"]).precision == "int8"
    assert load_runtime_config(None, ["precision=bf16"]).precision == "bf16"
    with pytest.raises(ConfigError, match="runtime.precision must be one of fp32, bf16 for engine 'torch'"):
        load_runtime_config(None, ["precision=int8"])
