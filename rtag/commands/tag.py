"""``rtag tag``: tag audio files with the papers' test-time procedure, or as a timeline."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rtag.audio_io import audio_files_in
from rtag.commands import positive_int
from rtag.engines import AUTO, ENGINE_KINDS, create_engine, describe_engine
from rtag.files import (
    FileError,
    Segment,
    TagRow,
    segment_files,
    tag_files,
    timeline_files,
)
from rtag.labels import SILENCE_DISPLAY_NAME, display_label
from rtag.model import load_model
from rtag.sinks import PROBABILITY_DECIMALS, TIME_DECIMALS, labelled_probabilities
from rtag.tta import WEIGHTINGS

__all__ = ["register", "run"]

STEP_SAMPLES = 5120
FAST_STEP_SAMPLES = 51200
SILENT_FILE = "silent file"  # the table's text for a whole file below the silence threshold


def audio_files(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """``paths`` with every folder replaced by the audio files under it
    (:func:`~rtag.audio_io.audio_files_in`; files are kept as given, whatever their suffix), and
    the folders that hold none."""
    found: list[Path] = []
    empty: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = audio_files_in(path)
            found += inside
            empty += [] if inside else [path]
        else:
            found.append(path)
    return found, empty


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tag`` sub-command."""
    parser = subparsers.add_parser(
        "tag",
        help="tag audio files (top 3 per file, or per window with --timeline)",
        description="Tag each file by the papers' test-time procedure: model inputs every 5120 "
        "samples (51200 with --fast) combined by geometric mean, each weighed by its energy "
        "(--weighting). --timeline lists the tags of every streaming window instead, for long "
        "recordings. Windows (and whole files) below the runtime's silence_threshold_dbfs are "
        "reported as silence, not tagged. Unreadable files are reported and skipped; the exit code "
        "is then 1.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="audio files, or folders (their audio files, recursively, in name order)")
    parser.add_argument("--model", type=Path, help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("--fast", action="store_true", help="step 51200 samples instead of 5120")
    parser.add_argument(
        "--weighting", choices=WEIGHTINGS, default="energy",
        help="how a file's inputs weigh in its geometric mean: energy (default; a note's quiet decay cannot outvote "
        "its attack) or equal (the papers' procedure)",
    )
    parser.add_argument("--timeline", action="store_true", help="one row per streaming window")
    parser.add_argument("--format", choices=("table", "csv", "jsonl"), default="table", help="output format")
    parser.add_argument("--top-k", type=positive_int, default=3, help="labels per row (default 3)")
    parser.add_argument(
        "--engine", choices=ENGINE_KINDS, default=AUTO,
        help="inference back end (default auto: CUDA on a usable GPU, else onnx int8 when the bundle has its "
        "int8 graph, else onnx fp32, else torch)",
    )
    parser.add_argument(
        "--precision", default=AUTO,
        help="auto (default: the engine's choice); fp32; bf16 with torch; int8 with onnx (NAME.int8.onnx beside the bundle)",
    )
    parser.add_argument(
        "--segments", action="store_true",
        help="with --timeline: one row per tag segment (start, end, label) by the stream's event rules instead of per window",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="say on stderr which engine runs")
    parser.set_defaults(func=run)


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


def _print_segment(segment: Segment, output_format: str, writer: Any) -> None:
    """Print one segment in ``output_format``."""
    start_s, end_s = round(segment.start_s, TIME_DECIMALS), round(segment.end_s, TIME_DECIMALS)
    p = round(segment.probability, PROBABILITY_DECIMALS)
    if writer is not None:
        writer.writerow([segment.path, _csv_time(start_s), _csv_time(end_s), segment.label, f"{p:.{PROBABILITY_DECIMALS}f}"])
    elif output_format == "jsonl":
        print(json.dumps({"path": str(segment.path), "label": segment.label, "start_s": start_s, "end_s": end_s,
                          "probability": p}), flush=True)
    else:
        print(f"{segment.path}\t{segment.start_s:8.2f}-{segment.end_s:.2f} s\t{display_label(segment.label)} {p:.3f}",
              flush=True)


def _csv_time(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.{TIME_DECIMALS}f}"


def run(args: argparse.Namespace) -> int:
    """Tag every file; exit code 1 if any could not be read."""
    if args.segments and not args.timeline:
        print("rtag tag: error: --segments needs --timeline", file=sys.stderr)
        return 2
    args.files, empty = audio_files(args.files)
    if empty:
        print(f"rtag tag: error: no audio files in {', '.join(map(str, empty))}", file=sys.stderr)
        return 2
    engine = create_engine(load_model(args.model), args.engine, args.precision)
    if args.verbose:
        print(f"rtag tag: engine {describe_engine(engine)}", file=sys.stderr)
    writer = csv.writer(sys.stdout) if args.format == "csv" else None
    if writer is not None:
        columns = ["label", "probability"] if args.segments else ["silent", "rank", "label", "probability"]
        writer.writerow(["path", "start_s", "end_s", *columns])
    rows: Iterator[TagRow | Segment | FileError]
    if args.segments:
        rows = segment_files(engine, args.files)
    elif args.timeline:
        rows = timeline_files(engine, args.files, args.top_k)
    else:
        rows = tag_files(engine, args.files, FAST_STEP_SAMPLES if args.fast else STEP_SAMPLES, args.top_k,
                         weighting=args.weighting)
    failed = 0
    files = tqdm(total=len(args.files), desc="files", unit="file", disable=len(args.files) < 2 or not sys.stderr.isatty(),
                 file=sys.stderr)
    with files:
        current = None  # the file whose rows are coming out; the bar counts files left behind
        for row in rows:
            if row.path != current:
                files.update(current is not None)
                current = row.path
            if isinstance(row, FileError):
                print(f"rtag tag: skipped {row.error}", file=sys.stderr)
                failed += 1
            elif isinstance(row, Segment):
                _print_segment(row, args.format, writer)
            else:
                _print_row(row, args.format, writer)
        files.update(current is not None)
    sys.stdout.flush()
    if failed:
        print(f"rtag tag: {len(args.files) - failed} file(s) tagged, {failed} could not be read", file=sys.stderr)
    return 1 if failed else 0
