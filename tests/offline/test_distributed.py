"""Multi-process training under torchrun with the gloo backend (2 CPU processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_fsd import REPO_ROOT, TINY_CONFIG, TinyDataset, tiny_overrides

from offline.checkpoint import load_checkpoint


@pytest.mark.slow
def test_torchrun_trains_with_two_gloo_processes(tiny_fsd: TinyDataset, tmp_path: Path) -> None:
    overrides = tiny_overrides(
        tiny_fsd.root, tmp_path, **{"train.epochs": 2, "train.folds": "[0]", "train.stages": "[audio, spec, comb]", "train.device": "cpu"}
    )
    sets = [arg for item in overrides for arg in ("--set", item)]
    # PYTHONFAULTHANDLER: a rank that aborts (a signal, not an exception) prints every thread's stack
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1",
           "PYTHONFAULTHANDLER": "1"}
    prepare = subprocess.run([sys.executable, "-m", "offline", "prepare", str(TINY_CONFIG), *sets], env=env, capture_output=True, text=True)
    assert prepare.returncode == 1 and tiny_fsd.corrupt in prepare.stderr, prepare.stderr  # one unreadable clip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "offline", "train", str(TINY_CONFIG), *sets]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    output = f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-8000:]}"
    assert result.returncode == 0, output
    for stage in ("audio", "spec", "comb"):
        state = load_checkpoint(tmp_path / "run" / stage / "fold0" / "last.pt")
        assert (state["world_size"], state["epoch"]) == (2, 2), output
        assert [row["epoch"] for row in state["history"]] == [1, 2], output
    # only rank 0 writes files and reports
    assert result.stdout.count("comb fold 0: 2 epochs") == 1, output
