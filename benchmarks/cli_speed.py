"""Seconds of wall time per audio minute of ``rtag tag`` on a long recording, start-up excluded.

    python benchmarks/cli_speed.py [--data ../shared/data/real] [--work /tmp/rtag-cli-speed]
        [--flags "--fast --timeline" --flags "--fast --timeline --engine torch"] [--repeats 3]

A 5-minute recording is made once from real clips of the manifest (every 10th row in manifest
order, each cut to at most 6 s and joined end to end, 44.1 kHz mono 16-bit WAV), and a 10 s
recording from its start. Each flag set runs ``rtag tag FLAGS FILE`` as a new process on both;
the figure is (wall time on the long file - wall time on the short one) / (audio minutes between
them), so the start-up (imports, model loading, engine creation) cancels and what is left is what
every further minute of audio costs. The median of ``--repeats`` runs of each is reported.
``--python`` and ``--pythonpath`` run another checkout (for before/after figures).
docs/speed.md quotes the output.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from rtag.audio_io import load_audio

REPO_ROOT = Path(__file__).resolve().parent.parent
RATE_HZ = 44100
LONG_S = 300.0
SHORT_S = 10.0
CLIP_MAX_S = 6.0
DEFAULT_FLAGS = ("--fast --timeline", "--fast --timeline --engine torch --precision fp32")


def make_recordings(data: Path, work: Path) -> tuple[Path, Path]:
    """The 5-minute and 10 s recordings under ``work`` (made from ``data``'s clips if missing)."""
    long_path, short_path = work / "real-5min.wav", work / "real-10s.wav"
    if long_path.is_file() and short_path.is_file():
        return long_path, short_path
    work.mkdir(parents=True, exist_ok=True)
    with open(data / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[::10]
    pieces: list[np.ndarray] = []
    total = 0
    for row in rows:
        clip = load_audio(data / row["path"], RATE_HZ)[: int(CLIP_MAX_S * RATE_HZ)]
        pieces.append(clip)
        total += clip.shape[0]
        if total >= LONG_S * RATE_HZ:
            break
    recording = np.concatenate(pieces)[: int(LONG_S * RATE_HZ)]
    if recording.shape[0] < LONG_S * RATE_HZ:
        raise SystemExit(f"{data}: its clips make only {recording.shape[0] / RATE_HZ:.0f} s, not {LONG_S:.0f}")
    recording = np.clip(recording, -1.0, 1.0)
    sf.write(long_path, recording, RATE_HZ, subtype="PCM_16")
    sf.write(short_path, recording[: int(SHORT_S * RATE_HZ)], RATE_HZ, subtype="PCM_16")
    return long_path, short_path


def wall_s(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one run of ``command`` (its output discarded; a failure stops the benchmark)."""
    start = time.perf_counter()
    # the checkout to run is the working folder too: `python -m` puts the working folder first on sys.path
    done = subprocess.run(command, env=env, cwd=env.get("PYTHONPATH", REPO_ROOT), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "real",
                        help="real-data folder with manifest.csv")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rtag-cli-speed"), help="where the recordings are kept")
    parser.add_argument("--flags", action="append", help="rtag tag flags of one run (repeatable)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each file and flag set (median)")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs rtag")
    parser.add_argument("--pythonpath", help="PYTHONPATH for that interpreter (another checkout)")
    args = parser.parse_args(argv)
    long_path, short_path = make_recordings(args.data, args.work)
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    minutes = (LONG_S - SHORT_S) / 60.0
    print("| flags | long file s | 10 s file s | s per audio minute |")
    print("|---|---:|---:|---:|")
    for flags in args.flags or DEFAULT_FLAGS:
        base = [args.python, "-m", "rtag", "tag", *shlex.split(flags)]
        long_runs = [wall_s([*base, str(long_path)], env) for _ in range(args.repeats)]
        short_runs = [wall_s([*base, str(short_path)], env) for _ in range(args.repeats)]
        long_s, short_s = statistics.median(long_runs), statistics.median(short_runs)
        print(f"| `{flags}` | {long_s:.2f} | {short_s:.2f} | {(long_s - short_s) / minutes:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
