"""Long recordings: ``rtag tag`` reads them block by block, so its peak memory does not grow with
the file's length: a 2-hour file against a 2-minute one for the whole-file tags, a 30-minute one
for ``--timeline`` (every window of two hours is some 28,800 engine calls: too long for the suite;
read whole, 30 minutes would already be 317 MB of float32)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO_ROOT

RATE_HZ = 8000  # resampled to 44.1 kHz on the way in: read whole, 2 hours would be 1.27 GB of float32
RSS_GROWTH_LIMIT_MB = 100.0

# rtag's command line in a child that reports its own peak resident memory
MEASURED_CLI = (
    "import json, resource, sys, time\n"
    "from rtag.cli import main\n"
    "started = time.perf_counter()\n"
    "code = main(sys.argv[2:])\n"
    "report = {'code': code, 'wall_s': time.perf_counter() - started,\n"
    "          'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}\n"
    "open(sys.argv[1], 'w').write(json.dumps(report))\n"
)


def _noise_file(path: Path, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", RATE_HZ, 1, subtype="PCM_16") as out:
        for _ in range(int(seconds // 60)):
            out.write((0.1 * rng.standard_normal(60 * RATE_HZ)).astype(np.float32))
    return path


def _measure(tmp_path: Path, *args: str) -> dict:
    report = tmp_path / f"report_{time.monotonic_ns()}.json"
    result = subprocess.run([sys.executable, "-c", MEASURED_CLI, str(report), *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(report.read_text())
    measured["rows"] = len(result.stdout.splitlines())
    return measured


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "long_s"), [(["--timeline"], 1800), (["--fast"], 7200)], ids=["timeline", "whole-file"])
def test_peak_memory_of_a_long_file_stays_within_100_mb_of_a_two_minute_one(
    tiny_bundle: Path, tmp_path: Path, mode: list[str], long_s: int
) -> None:
    short = _noise_file(tmp_path / "two_minutes.wav", 120)
    long = _noise_file(tmp_path / "long.wav", long_s)
    command = ["tag", "--model", str(tiny_bundle), "--format", "jsonl", *mode]
    a = _measure(tmp_path, *command, str(short))
    b = _measure(tmp_path, *command, str(long))
    print(f"{mode}: 2 min {a['peak_rss_mb']:.0f} MB in {a['wall_s']:.1f} s; "
          f"{long_s / 60:.0f} min {b['peak_rss_mb']:.0f} MB in {b['wall_s']:.1f} s")
    assert b["peak_rss_mb"] - a["peak_rss_mb"] <= RSS_GROWTH_LIMIT_MB
    if mode == ["--timeline"]:  # every window is a row
        assert b["rows"] > 14 * a["rows"] > 0
    else:
        assert a["rows"] == b["rows"] == 1
