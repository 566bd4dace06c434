"""``bench``: timed training steps of each stage's network, without data."""

from __future__ import annotations

import re

import pytest
from tiny_fsd import TINY_CONFIG

from offline.cli import main


def test_bench_times_every_stage_and_extrapolates_an_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(TINY_CONFIG), "--steps", "1", "--train-clips", "80", "--set", "train.batch_size=4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["audio:", "spec:", "comb:"]
    for line in lines:
        match = re.search(r"([0-9.]+) s/step \(batch 4, fp32, cpu, 1 threads\), ([0-9.]+) min/epoch of 80 clips", line)
        assert match, line
        seconds, minutes = float(match.group(1)), float(match.group(2))
        assert seconds > 0 and minutes == pytest.approx(seconds * 20 / 60, abs=0.051)
