"""Fixtures of the offline pipeline's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_fsd import TinyDataset, write_fsdkaggle2018


@pytest.fixture(scope="session")
def tiny_fsd(tmp_path_factory: pytest.TempPathFactory, real_data: Path, real_manifest: list[dict[str, str]]) -> TinyDataset:
    """The tiny FSDKaggle2018-layout dataset (written once per test session)."""
    return write_fsdkaggle2018(tmp_path_factory.mktemp("fsd") / "FSDKaggle2018", real_data, real_manifest)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run each offline test on one torch thread (shared CI cores, deterministic sums), then
    restore the thread count for the other suites."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
