"""``rtag tag``: tag audio files with the papers' test-time procedure, or as a timeline."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rtag.audio_io import AudioBlocks, AudioFileError
from rtag.commands import positive_int
from rtag.engines import ENGINE_KINDS, Engine, create_engine
from rtag.labels import SILENCE_DISPLAY_NAME, display_label, top_labels
from rtag.level import LevelMeter, is_silent, window_level_dbfs
from rtag.model import load_model
from rtag.runtime_config import RuntimeConfig
from rtag.scheduler import Window, WindowScheduler
from rtag.sinks import PROBABILITY_DECIMALS, TIME_DECIMALS, labelled_probabilities
from rtag.tta import tag_blocks

__all__ = ["TagRow", "register", "run", "tag_clip_rows", "timeline_rows"]

STEP_SAMPLES = 5120
FAST_STEP_SAMPLES = 51200
SILENCE_THRESHOLD_DBFS = RuntimeConfig().silence_threshold_dbfs
SILENT_FILE = "silent file"  # the table's text for a whole file below the silence threshold
FILE_BLOCK_FRAMES = 65536  # file frames read at a time: memory does not grow with a file's length
TIMELINE_BATCH = 32  # windows per engine call in --timeline


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tag`` sub-command."""
    parser = subparsers.add_parser(
        "tag",
        help="tag audio files (top 3 per file, or per window with --timeline)",
        description="Tag each file by the papers' test-time procedure: model inputs every 5120 "
        "samples (51200 with --fast) combined by geometric mean. --timeline lists the tags of "
        "every streaming window instead, for long recordings. Windows (and whole files) below the "
        "runtime's silence_threshold_dbfs are reported as silence, not tagged. Unreadable files are "
        "reported and skipped; the exit code is then 1.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files")
    parser.add_argument("--model", type=Path, help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("--fast", action="store_true", help="step 51200 samples instead of 5120")
    parser.add_argument("--timeline", action="store_true", help="one row per streaming window")
    parser.add_argument("--format", choices=("table", "csv", "jsonl"), default="table", help="output format")
    parser.add_argument("--top-k", type=positive_int, default=3, help="labels per row (default 3)")
    parser.add_argument("--engine", choices=ENGINE_KINDS, default="torch", help="inference back end (default torch)")
    parser.add_argument(
        "--precision", default="fp32", help="fp32 (default); bf16 with torch; int8 with onnx (NAME.int8.onnx beside the bundle)"
    )
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class TagRow:
    """Tags for one file, or for one window of it.

    Attributes:
        path: the file.
        top: (label, probability) pairs, best first; empty when ``silent``.
        start_s: window start in seconds (``None`` for a whole-file row).
        end_s: window end in seconds (``None`` for a whole-file row).
        silent: the window (or the whole file) is below the silence threshold and was not tagged.
    """

    path: Path
    top: list[tuple[str, float]]
    start_s: float | None = None
    end_s: float | None = None
    silent: bool = False


def _file_blocks(path: Path, sample_rate_hz: int) -> Iterator[np.ndarray]:
    """The file's blocks (:class:`~rtag.audio_io.AudioBlocks`), with a progress bar in audio
    seconds on stderr when it is a terminal (none when piped or redirected)."""
    blocks = AudioBlocks(path, sample_rate_hz, FILE_BLOCK_FRAMES)
    with tqdm(total=round(blocks.duration_s, 1), desc=path.name, unit="s", leave=False,
              disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
        for block in blocks:
            bar.update(round(block.shape[0] / sample_rate_hz, 3))
            yield block


def tag_clip_rows(
    engine: Engine, path: Path, step_samples: int, top_k: int,
    silence_threshold_dbfs: float | None = SILENCE_THRESHOLD_DBFS,
) -> list[TagRow]:
    """One whole-file row by the test-time procedure with ``step_samples``, the file read block
    by block (memory does not grow with its length).

    A file whose loudest 2048-sample frame is below ``silence_threshold_dbfs`` (default: the
    runtime's; ``None``: never) is silent: its row has no tags and ``silent=True``.

    Raises:
        AudioFileError: if the file cannot be read (names it and the reason).
    """
    meter = LevelMeter()

    def metered() -> Iterator[np.ndarray]:
        for block in _file_blocks(path, engine.sample_rate_hz):
            meter.add(block)
            yield block

    probs = tag_blocks(engine.predict, metered(), engine.window_samples, step_samples)
    if is_silent(meter.level_dbfs, silence_threshold_dbfs):
        return [TagRow(path, [], silent=True)]
    return [TagRow(path, top_labels(probs, engine.labels, top_k))]


def timeline_rows(
    engine: Engine, path: Path, top_k: int,
    silence_threshold_dbfs: float | None = SILENCE_THRESHOLD_DBFS,
) -> Iterator[TagRow]:
    """One row per streaming window (the model's window and hop), each window's own
    probabilities, yielded batch by batch as they are computed; the file is read block by
    block, so memory does not grow with its length.

    The windows are those a replay through :class:`~rtag.stream.StreamTagger` cuts (the same
    grid, the same streaming resampler), run ``TIMELINE_BATCH`` at a time. The audio after the
    last full window is one zero-padded window (a file shorter than a window gives that one).
    Windows below ``silence_threshold_dbfs`` (default: the runtime's; ``None``: none) are silent
    rows and never reach the engine.

    Raises:
        AudioFileError: if the file cannot be read (names it and the reason).
    """
    scheduler = WindowScheduler(engine.window_samples, engine.hop_samples, engine.sample_rate_hz)
    pending: list[Window] = []
    for block in _file_blocks(path, engine.sample_rate_hz):
        pending.extend(scheduler.push(block, 0.0))
        while len(pending) >= TIMELINE_BATCH:
            yield from _window_rows(engine, path, pending[:TIMELINE_BATCH], top_k, silence_threshold_dbfs)
            del pending[:TIMELINE_BATCH]
    tail = scheduler.flush(0.0)
    yield from _window_rows(engine, path, [*pending, *([tail] if tail is not None else [])], top_k, silence_threshold_dbfs)


def _window_rows(engine: Engine, path: Path, windows: list[Window], top_k: int,
                 silence_threshold_dbfs: float | None) -> Iterator[TagRow]:
    silent = [is_silent(window_level_dbfs(w.audio), silence_threshold_dbfs) for w in windows]
    sounding = [w.audio for w, quiet in zip(windows, silent) if not quiet]
    probs = iter(engine.predict(np.stack(sounding)) if sounding else [])
    for window, quiet in zip(windows, silent):
        top = [] if quiet else top_labels(next(probs), engine.labels, top_k)
        yield TagRow(path, top, window.start_s, window.end_s, quiet)


def _table_lines(row: TagRow) -> Iterator[str]:
    if row.silent:
        labels = SILENT_FILE if row.start_s is None else SILENCE_DISPLAY_NAME
    else:
        labels = ", ".join(f"{display_label(label)} {p:.3f}" for label, p in row.top)
    if row.start_s is None:
        yield f"{row.path}\t{labels}"
    else:
        yield f"{row.path}\t{row.start_s:8.2f}-{row.end_s:.2f} s\t{labels}"


def _print_row(row: TagRow, output_format: str, writer: Any) -> None:
    """Print one row in ``output_format`` (``writer``: the CSV writer of the csv format)."""
    if writer is not None:
        silent = str(row.silent).lower()
        times = [_csv_time(row.start_s), _csv_time(row.end_s)]
        if row.silent:
            writer.writerow([row.path, *times, silent, "", "", ""])
        for rank, (label, p) in enumerate(row.top, start=1):
            writer.writerow([row.path, *times, silent, rank, label, f"{p:.{PROBABILITY_DECIMALS}f}"])
    elif output_format == "jsonl":
        record: dict[str, object] = {"path": str(row.path), "silent": row.silent, "top": labelled_probabilities(row.top)}
        if row.start_s is not None and row.end_s is not None:
            record.update(start_s=round(row.start_s, TIME_DECIMALS), end_s=round(row.end_s, TIME_DECIMALS))
        print(json.dumps(record), flush=True)
    else:
        for line in _table_lines(row):
            print(line, flush=True)


def _csv_time(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.{TIME_DECIMALS}f}"


def run(args: argparse.Namespace) -> int:
    """Tag every file; exit code 1 if any could not be read."""
    engine = create_engine(load_model(args.model), args.engine, args.precision)
    step = FAST_STEP_SAMPLES if args.fast else STEP_SAMPLES
    writer = csv.writer(sys.stdout) if args.format == "csv" else None
    if writer is not None:
        writer.writerow(["path", "start_s", "end_s", "silent", "rank", "label", "probability"])
    failed = 0
    files = tqdm(args.files, desc="files", unit="file", disable=len(args.files) < 2 or not sys.stderr.isatty(),
                 file=sys.stderr)
    for path in files:
        try:
            rows = timeline_rows(engine, path, args.top_k) if args.timeline else tag_clip_rows(engine, path, step, args.top_k)
            for row in rows:
                _print_row(row, args.format, writer)
        except AudioFileError as exc:
            print(f"rtag tag: skipped {exc}", file=sys.stderr)
            failed += 1
        sys.stdout.flush()
    if failed:
        print(f"rtag tag: {len(args.files) - failed} file(s) tagged, {failed} could not be read", file=sys.stderr)
    return 1 if failed else 0
