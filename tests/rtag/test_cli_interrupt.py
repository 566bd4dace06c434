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

DELAYS_S = (0.6, 0.3, 0.15)


def _torch_imported(stderr: str) -> bool:
    # -X importtime prints a module's line once its import has finished; torch's comes last
    return any(line.rstrip().endswith("| torch") for line in stderr.splitlines())


@pytest.mark.parametrize("program", [["-m", "rtag.cli", "info"], ["-m", "offline", "train", "--help"]],
                         ids=["rtag", "offline"])
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(program: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for delay_s in DELAYS_S:
        child = subprocess.Popen([sys.executable, "-X", "importtime", *program], cwd=REPO_ROOT, env=env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay_s)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
        if _torch_imported(stderr):
            continue  # torch was already in: try again, interrupting earlier
        assert child.returncode == 130, stderr[-2000:]
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
        assert stdout == ""
        return
    pytest.fail(f"torch imported within {min(DELAYS_S)} s every time: no interrupt landed during start-up")
