"""Checkpoints survive an interrupted write: a write failing midway or a process killed while
writing leaves the previous checkpoint intact and loadable; a killed training run resumes."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import pytest
import torch
from tiny_fsd import REPO_ROOT, TINY_CONFIG, TinyDataset, tiny_overrides

from offline.checkpoint import load_checkpoint, save_checkpoint


class DiskFullAfter(io.BufferedWriter):
    """A file that accepts ``limit_bytes`` and then fails as a full disk does."""

    def __init__(self, path: Path, limit_bytes: int) -> None:
        super().__init__(io.FileIO(path, "wb"))
        self.limit_bytes = limit_bytes

    def write(self, data: bytes) -> int:  # type: ignore[override]
        written = super().write(bytes(data)[: self.limit_bytes])
        self.flush()
        raise OSError(errno.ENOSPC, f"No space left on device (after {written} bytes)")


def _state(version: int, values: int = 1000) -> dict[str, object]:
    return {"epoch": version, "model": {"weight": torch.full((values,), float(version))}}


def test_a_write_failing_midway_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, _state(1))
    opened: list[Path] = []

    def failing_open(tmp: Path) -> BinaryIO:
        opened.append(tmp)
        return DiskFullAfter(tmp, limit_bytes=500)

    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, _state(2), open_file=failing_open)
    assert opened and not opened[0].exists(), "the half-written temporary file is removed"
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["model"]["weight"], torch.full((1000,), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


WRITER = """
import sys, torch
from pathlib import Path
from offline.checkpoint import save_checkpoint
path = Path(sys.argv[1])
version = 0
while True:
    version += 1
    save_checkpoint(path, {"epoch": version, "model": {"weight": torch.full((4_000_000,), float(version))}})
    print(version, flush=True)
"""


def test_a_process_killed_while_writing_leaves_a_whole_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "1"  # type: ignore[union-attr]
        time.sleep(0.37)  # somewhere in a later write of 16 MB
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    state = load_checkpoint(path)
    version = state["epoch"]
    assert version >= 1
    assert torch.equal(state["model"]["weight"], torch.full((4_000_000,), float(version))), "one whole version"


EPOCHS = 20  # enough that the run cannot end between the first checkpoint and the kill


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_from_its_last_completed_epoch(
    tiny_fsd: TinyDataset, tmp_path: Path
) -> None:
    overrides = tiny_overrides(
        tiny_fsd.root, tmp_path, **{"train.epochs": EPOCHS, "train.folds": "[0]", "train.stages": "[audio]",
                                    "train.patience_epochs": EPOCHS}
    )
    command = [sys.executable, "-m", "offline", "train", str(TINY_CONFIG)]
    for item in overrides:
        command += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    prepare = subprocess.run([sys.executable, "-m", "offline", "prepare", *command[4:]], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert prepare.returncode == 1 and tiny_fsd.corrupt in prepare.stderr  # one clip is unreadable

    last = tmp_path / "run" / "audio" / "fold0" / "last.pt"
    training = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not last.exists() and training.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert last.exists(), "the first epoch finished"
        time.sleep(0.05)  # into the next epoch (a tiny epoch can take well under 0.2 s)
    finally:
        training.send_signal(signal.SIGKILL)
        training.wait(timeout=10)
    killed_at_epoch = load_checkpoint(last)["epoch"]
    assert 1 <= killed_at_epoch < EPOCHS, "killed before the run finished"

    resumed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"audio fold 0: resuming after epoch {killed_at_epoch}" in resumed.stderr
    output = resumed.stdout + resumed.stderr
    assert f"audio fold 0 epoch {killed_at_epoch + 1}:" in output
    assert f"audio fold 0 epoch {killed_at_epoch}:" not in output  # completed epochs are not redone
    final = load_checkpoint(last)
    assert final["epoch"] == EPOCHS
    assert [row["epoch"] for row in final["history"]] == list(range(1, EPOCHS + 1))
    metrics = (last.parent / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == EPOCHS
