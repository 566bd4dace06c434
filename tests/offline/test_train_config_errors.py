"""``python -m offline train`` with a bad experiment config: exit code 2, the file and key named,
no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_fsd import REPO_ROOT, TINY_CONFIG


def _train(config: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    arguments = [item for override in overrides for item in ("--set", override)]
    return subprocess.run(
        [sys.executable, "-m", "offline", "train", str(config), *arguments],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("  epochs: 3", "  epochs: 3\n  epochz: 3"), "bad.yaml: unknown key 'train.epochz'"),
        (("  epochs: 3", "  epochs: three"), "bad.yaml: key 'train.epochs' expects an integer"),
        (("model_file: ../model/comb_tiny.yaml", "model_file: ../model/absent.yaml"), "absent.yaml"),
    ],
    ids=["unknown-key", "wrong-type", "missing-model-file"],
)
def test_train_refuses_a_bad_config_naming_file_and_key(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    text = TINY_CONFIG.read_text()
    assert edit[0] in text
    config = tmp_path / "bad.yaml"
    config.write_text(text.replace(edit[0], edit[1]).replace("../model/", f"{TINY_CONFIG.parent.parent}/model/"))
    result = _train(config)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_train_names_a_missing_config_and_a_bad_override(tmp_path: Path) -> None:
    missing = _train(tmp_path / "absent.yaml")
    assert missing.returncode == 2 and "absent.yaml" in missing.stderr and "Traceback" not in missing.stderr
    override = _train(TINY_CONFIG, "train.epochz=4")
    assert override.returncode == 2 and "'train.epochz'" in override.stderr and "Traceback" not in override.stderr
    weighting = _train(TINY_CONFIG, "predict.weighting=loudest")
    assert weighting.returncode == 2 and "predict.weighting must be one of energy, equal" in weighting.stderr
    assert "Traceback" not in weighting.stderr
