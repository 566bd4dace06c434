"""Ctrl-C while the command line is still starting (importing torch and the sub-commands) exits
with 130 and no traceback, for ``rtag`` and ``python -m offline`` alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT

ATTEMPTS = 8


def _imported(stderr: str, module: str) -> bool:
    # -X importtime prints "import time: self | cumulative |   name" (indented by nesting) once a
    # module's import has finished
    return any(line.startswith("import time:") and line.split("|")[-1].strip() == module for line in stderr.splitlines())


@pytest.mark.parametrize("program", [["-m", "rtag.cli", "info"], ["-m", "offline", "train", "--help"]],
                         ids=["rtag", "offline"])
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(program: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    delay_s = 0.3  # torch alone takes seconds to import here
    for _ in range(ATTEMPTS):
        child = subprocess.Popen([sys.executable, "-X", "importtime", *program], cwd=REPO_ROOT, env=env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay_s)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
        if not _imported(stderr, "rtag"):
            delay_s *= 1.5  # still in the interpreter's own start (a loaded machine): later
            continue
        assert child.returncode == 130, stderr[-2000:]
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
        return
    pytest.fail(f"the interpreter had not reached rtag within {delay_s:.1f} s in {ATTEMPTS} attempts")
