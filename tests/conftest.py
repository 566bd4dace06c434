"""Fixtures shared by all test suites."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"


def real_data_dir() -> Path | None:
    """The folder of real labelled recordings (manifest.csv + clips/), if this machine has it.

    Looked up in ``$RTAG_REAL_DATA``, then beside the repository at ``../shared/data/real``.
    """
    candidates = [os.environ.get("RTAG_REAL_DATA"), REPO_ROOT.parent / "shared" / "data" / "real"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "manifest.csv").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Path of the real recordings folder; skips (with the reason) where it is absent."""
    folder = real_data_dir()
    if folder is None:
        pytest.skip("real recordings not found: set RTAG_REAL_DATA or place them at ../shared/data/real")
    return folder


@pytest.fixture(scope="session")
def real_manifest(real_data: Path) -> list[dict[str, str]]:
    """Rows of the real recordings' manifest.csv (path, label, quality, source, license, ...)."""
    with open(real_data / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
