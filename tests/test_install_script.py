"""scripts/install.sh refuses what it does not know before touching the machine, and documents its
choices (the virtual environment, the interpreter, the CPU-only torch index)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "install.sh"


def _install(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *arguments], capture_output=True, text=True, timeout=30, check=False)


def test_an_unknown_option_is_refused_before_anything_is_installed() -> None:
    result = _install("--tests")
    assert result.returncode == 2
    assert "unknown option '--tests'" in result.stderr and "apt-get" not in result.stderr + result.stdout


def test_help_names_the_environment_and_the_cpu_torch_choice() -> None:
    result = _install("--help")
    assert result.returncode == 0, result.stderr
    for expected in ("--test", "--cpu-torch", ".venv", "RTAG_PYTHON", "RTAG_TORCH_INDEX_URL", "/usr/bin/python3"):
        assert expected in result.stdout, expected


def test_the_ci_entry_point_runs_the_readme_test_command() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    command = "bash scripts/install.sh --test && .venv/bin/python -m pytest -q"
    assert command in readme
    ci_lines = [line for line in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
                if line and not line.startswith(("#", "set ", "cd "))]
    assert " && ".join(ci_lines) == command
