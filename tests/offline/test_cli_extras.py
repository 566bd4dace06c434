"""The offline command line without the optional ``train`` extra: one line saying what to install."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

# run `python -m offline` as if matplotlib, scikit-learn and mido were not installed
WITHOUT_TRAIN_EXTRA = (
    "import runpy, sys\n"
    "for name in ('matplotlib', 'sklearn', 'mido'):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['offline', *sys.argv[1:]]\n"
    "runpy.run_module('offline', run_name='__main__')\n"
)


def _offline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_TRAIN_EXTRA, *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_help_lists_every_command_and_marks_the_unavailable_ones() -> None:
    result = _offline("--help")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for command in ("prepare", "train", "predict", "evaluate", "export", "build-corpus", "corpus-report"):
        assert command in result.stdout
    assert "unavailable" in result.stdout and "pip install 'rtag[train]'" in result.stdout


def test_an_unavailable_command_says_what_to_install_and_exits_2() -> None:
    result = _offline("evaluate", "configs/train/corpus_2s.yaml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "evaluate: error: needs the Python module" in lines[0]
    assert "pip install 'rtag[train]'" in lines[0]
