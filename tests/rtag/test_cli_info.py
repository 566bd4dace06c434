"""``rtag info``: bundles, configs, and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rtag.bundle import save_bundle
from rtag.cli import main
from rtag.config import ModelConfig, load_yaml
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.networks import build_network
from tests.conftest import CONFIGS


def test_info_prints_the_parameter_count_of_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--config", str(CONFIGS / "model" / "comb_2s.yaml")]) == 0
    out = capsys.readouterr().out
    assert "cnn-comb" in out
    assert "3,136,649" in out


def test_info_describes_a_bundle_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)
    torch.manual_seed(0)
    path = save_bundle(
        tmp_path / "m.rtag", build_network(config), config, FSDKAGGLE2018_LABELS, hop_samples=11025,
        provenance={"data": "test"},
    )
    assert main(["info", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["parameters_keras_style"] == 19_749
    assert facts["labels"] == list(FSDKAGGLE2018_LABELS)
    assert (facts["window_samples"], facts["hop_samples"]) == (22050, 11025)
    assert facts["provenance"]["data"] == "test"


def test_info_text_names_the_engine_and_indents_the_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rtag.engines.cpu_has_amx", lambda: False)
    config = load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)
    path = save_bundle(tmp_path / "m.rtag", build_network(config), config, FSDKAGGLE2018_LABELS,
                       provenance={"data": "test", "heldout": {"real": {"map3": 0.65274261, "clips": 12}}, "amin": 1e-10})
    assert main(["info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # no int8 graph beside this bundle: the auto engine is ONNX Runtime fp32 on a CPU without AMX
    assert any(line.split() == ["engine", "onnx", "fp32", "on", "CPUExecutionProvider,", *line.split()[-2:]]
               for line in lines), lines
    provenance = lines[lines.index("provenance:") + 1:]
    assert provenance[:4] == ["  data: test", "  heldout:", "    real: {map3: 0.6527, clips: 12}", "  amin: 1.0e-10"]


def test_info_on_a_corrupt_bundle_exits_2_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.rtag"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json")
    result = subprocess.run(
        [sys.executable, "-m", "rtag.cli", "info", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "broken.rtag" in result.stderr and "Traceback" not in result.stderr


def test_info_without_a_bundle_explains_that_none_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("rtag.model.DEFAULT_BUNDLE", tmp_path / "absent.rtag")
    assert main(["info"]) == 2
    assert "no default model is bundled" in capsys.readouterr().err
