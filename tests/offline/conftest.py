"""Fixtures of the offline pipeline's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_fsd import TinyDataset, write_fsdkaggle2018


@pytest.fixture(scope="session")
def tiny_fsd(tmp_path_factory: pytest.TempPathFactory, real_data: Path, real_manifest: list[dict[str, str]]) -> TinyDataset:
    """The tiny FSDKaggle2018-layout dataset (written once per test session)."""
    return write_fsdkaggle2018(tmp_path_factory.mktemp("fsd") / "FSDKaggle2018", real_data, real_manifest)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Keep heavy tests to one thread on the shared CI cores (and make them deterministic)."""
    torch.set_num_threads(1)
