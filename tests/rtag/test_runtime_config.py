"""The runtime config: shipped defaults, strict keys, validated values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtag.config import ConfigError
from rtag.model import TaggerModel
from rtag.runtime_config import RuntimeConfig, load_runtime_config
from rtag.stream import StreamTagger
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
    default = load_runtime_config(None)
    assert (default.engine, default.precision) == ("auto", "auto")
    assert load_runtime_config(None, ["engine=onnx", "precision=int8"]).precision == "int8"
    assert load_runtime_config(None, ["precision=bf16"]).precision == "bf16"  # auto narrows to torch
    assert load_runtime_config(None, ["engine=torch"]).precision == "auto"  # torch's own: fp32
    with pytest.raises(ConfigError, match="runtime.precision: engine 'torch' has no precision 'int8'; choose one of fp32, bf16"):
        load_runtime_config(None, ["engine=torch", "precision=int8"])
    with pytest.raises(ConfigError, match="runtime.precision: unknown precision 'fp16'"):
        load_runtime_config(None, ["precision=fp16"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("ring_buffer_s=.inf", "ring_buffer_s"),
        ("ring_buffer_s=1e6", "ring_buffer_s"),
        ("poll_interval_ms=.inf", "poll_interval_ms"),
        ("poll_interval_ms=1e7", "poll_interval_ms"),
        ("device_stall_timeout_s=.nan", "device_stall_timeout_s"),
        ("queue_windows=0", "queue_windows"),
        ("smoothing_windows=true", "smoothing_windows"),
        ("hop_samples=-5", "hop_samples"),
        ("silence_threshold_dbfs=.nan", "silence_threshold_dbfs"),
        ("on_threshold=.nan", "thresholds"),
    ],
)
def test_every_numeric_key_is_range_checked_by_name(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_runtime_config(None, [override])


def test_a_hop_longer_than_the_window_is_refused(tiny_model: TaggerModel) -> None:
    with pytest.raises(ConfigError, match="hop_samples .* must not exceed window_samples"):
        load_runtime_config(None, ["window_samples=1000", "hop_samples=2000"])
    with pytest.raises(ConfigError, match=r"runtime.hop_samples \(200000\) must not exceed the window"):
        StreamTagger(tiny_model, np.zeros(44100, np.float32), config=RuntimeConfig(hop_samples=200000))
