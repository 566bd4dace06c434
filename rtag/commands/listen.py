"""``rtag listen``: tag a microphone (or a replayed file) live, with a console monitor."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rtag.commands import positive_int
from rtag.engines import create_engine, describe_engine
from rtag.model import load_model
from rtag.monitor import ConsoleMonitor
from rtag.runtime_config import load_runtime_config
from rtag.sinks import JsonLinesWriter
from rtag.sources import FileSource
from rtag.stream import StreamTagger
from rtag.stream_results import StreamStats

__all__ = ["register", "run", "summary"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_POLL_S = 0.05  # how often the main thread looks for Ctrl-C and the end of the stream


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``listen`` sub-command."""
    parser = subparsers.add_parser(
        "listen",
        help="tag live audio from an input device (or a replayed file) with a console monitor",
        description="Tag live audio window by window: top labels with bars, input level, lag and "
        "losses on the console; tag start/end events as lines. Stop with Ctrl-C or --duration-s.",
    )
    parser.add_argument("--model", type=Path, help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("--device", help="input device index or part of its name (see 'rtag devices')")
    parser.add_argument("--source", type=Path, help="replay this audio file instead of a device")
    parser.add_argument("--fast", action="store_true", help="with --source: replay as fast as possible")
    parser.add_argument("--top-k", type=positive_int, default=3, help="labels shown per window (default 3)")
    parser.add_argument("--jsonl", type=Path, help="also write windows and events as JSON lines here")
    parser.add_argument("--config", type=Path, help="runtime config YAML (default: built-in defaults)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a runtime config key, e.g. --set hop_samples=25600 (repeatable)",
    )
    parser.add_argument("--duration-s", type=float, help="stop after this many seconds: of listening to a "
                        "device, of the file with --source (with --fast too); default: until Ctrl-C, or the end of --source")
    parser.set_defaults(func=run)


def summary(stats: StreamStats) -> str:
    """One line of the stream's final counters."""
    return (
        f"captured {stats.captured_s:.1f} s; windows: {stats.windows_processed} tagged, "
        f"{stats.windows_dropped} dropped, {stats.windows_skipped} skipped, {stats.windows_silent} of the "
        f"tagged silent, {stats.windows_padded} a padded tail; lost samples: "
        f"{stats.lost_samples}; device overflows: {stats.input_overflows}; callback errors: "
        f"{stats.callback_errors}; device lost {stats.device_losses} time(s), away "
        f"{stats.device_gap_samples / stats.capture_rate_hz:.2f} s"
        + (f"; latency p50 {stats.latency_ms_p50:.0f} ms, p99 {stats.latency_ms_p99:.0f} ms" if stats.realtime else "")
    )


@contextmanager
def _ctrl_c_requests_stop() -> Iterator[threading.Event]:
    """While inside, Ctrl-C (SIGINT) and SIGTERM (what service managers send) set the yielded
    event instead of raising KeyboardInterrupt or killing the process wherever the main thread
    happens to be; the stream is then stopped in order."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: requested.set()) for sig in STOP_SIGNALS}
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    """Listen until stopped; returns the exit code."""
    if args.fast and args.source is None:
        print("rtag listen: error: --fast needs --source FILE", file=sys.stderr)
        return 2
    if args.source is not None and args.device is not None:
        print("rtag listen: error: give --device or --source, not both", file=sys.stderr)
        return 2
    if args.duration_s is not None and not args.duration_s > 0:
        print(f"rtag listen: error: --duration-s must be positive, not {args.duration_s}", file=sys.stderr)
        return 2
    config = load_runtime_config(args.config, args.set)
    source = None
    if args.source is not None:
        source = FileSource(args.source, realtime=not args.fast, block_samples=config.capture_block_samples,
                            duration_s=args.duration_s)
    engine = create_engine(load_model(args.model), config.engine, config.precision)
    # the console shows what tags start on: each window's own probabilities, or the mean with onset: smoothed
    shown_windows = config.smoothing_windows if config.onset == "smoothed" else 1
    sinks: list[object] = [ConsoleMonitor(top_k=args.top_k, smoothing_windows=shown_windows)]
    writer = JsonLinesWriter(args.jsonl, top_k=args.top_k) if args.jsonl is not None else None
    if writer is not None:
        sinks.append(writer)
    stream = StreamTagger(engine, source, device=args.device, config=config, sinks=sinks)
    print(f"listening to {stream.source.name} ({stream.source.sample_rate_hz} Hz); engine {describe_engine(engine)}; "
          "Ctrl-C stops", file=sys.stderr)
    with stream, _ctrl_c_requests_stop() as stop_requested:
        # a replay's duration is the file's seconds, which the source stops at; a device's is wall time
        deadline_s = None if args.duration_s is None or source is not None else time.monotonic() + args.duration_s
        while not stream.finished and not stop_requested.is_set() and (writer is None or writer.failure is None):
            remaining_s = None if deadline_s is None else deadline_s - time.monotonic()
            if remaining_s is not None and remaining_s <= 0:
                break
            stream.run_for(STOP_POLL_S if remaining_s is None else min(STOP_POLL_S, remaining_s))
    print(summary(stream.stats()), file=sys.stderr)
    if writer is not None and writer.failure is not None:
        print(f"rtag listen: error: --jsonl {args.jsonl}: write failed ({writer.failure})", file=sys.stderr)
        return 1
    return 0
