"""Crash-safe files: atomic writes and training checkpoints that survive a kill.

A file is written to a temporary name in the same folder, flushed and fsynced, then moved over
the target with :func:`os.replace`, so a reader (or a resumed run) sees either the old file or
the new one, never half of one.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

__all__ = ["atomic_write_bytes", "capture_rng_state", "load_checkpoint", "restore_rng_state", "save_checkpoint"]


def _open_for_writing(path: Path) -> BinaryIO:
    return open(path, "wb")


def atomic_write_bytes(
    path: Path, data: bytes, *, open_file: Callable[[Path], BinaryIO] = _open_for_writing
) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    If anything fails (or the process dies) before the final rename, ``path`` keeps its previous
    contents; on an exception the temporary file is removed and the exception propagates.

    Args:
        path: the file to write.
        data: its new contents.
        open_file: opens the temporary file for binary writing (default: ``open(tmp, "wb")``);
            a different opener (e.g. one whose writes fail midway, as a full disk does) is how
            the behaviour under failure is tested.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open_file(tmp) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(
    path: Path, state: dict[str, Any], *, open_file: Callable[[Path], BinaryIO] = _open_for_writing
) -> Path:
    """Serialise ``state`` with :func:`torch.save` and write it atomically to ``path``.

    Args:
        path: the checkpoint file.
        state: what to save.
        open_file: see :func:`atomic_write_bytes`.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write_bytes(path, buffer.getvalue(), open_file=open_file)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` onto the CPU.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a readable checkpoint (the message names it).
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from None


def capture_rng_state() -> dict[str, Any]:
    """States of Python's, NumPy's and torch's global generators (CUDA too when present)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states captured by :func:`capture_rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
