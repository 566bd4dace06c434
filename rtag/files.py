"""Tagging audio files: whole files by the papers' test-time procedure, or window by window.

:func:`tag_files` gives one row per file (inputs every ``step_samples``, combined by geometric
mean), :func:`timeline_files` one row per streaming window, :func:`segment_files` the start/end
segments the stream's events would give. All read each file block by block,
so memory does not grow with a file's length; a background thread decodes and cuts the next
inputs while the engine runs the current batch, and batches run across file boundaries, so many
short files keep the engine as busy as one long one. Rows come out in file order, each file's
as soon as its last batch is done; a file that cannot be read gives a :class:`FileError` in its
place and the others go on.
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtag.audio_io import AudioBlocks, AudioFileError
from rtag.engines import Engine, rumble_filter_of
from rtag.labels import top_labels
from rtag.level import LevelMeter, is_silent, window_level_dbfs
from rtag.runtime_config import RuntimeConfig
from rtag.scheduler import Window, WindowScheduler
from rtag.smoother import EventTracker, TagEvent
from rtag.tta import GeometricMean, check_weighting, input_weights, tta_stream

__all__ = [
    "BATCH_INPUTS", "FILE_BLOCK_FRAMES", "FileError", "Segment", "TagRow", "file_windows", "segment_files", "tag_files",
    "timeline_files",
]

FILE_BLOCK_FRAMES = 65536
"""File frames decoded at a time."""
BATCH_INPUTS = 32
"""Inputs per engine call."""
PREFETCH_INPUTS = 2 * BATCH_INPUTS
"""Inputs the decoding thread may cut ahead of the engine (2 batches: 22 MB for the 2 s model)."""
SILENCE_THRESHOLD_DBFS = RuntimeConfig().silence_threshold_dbfs


@dataclass(frozen=True)
class TagRow:
    """Tags for one file, or for one window of it.

    Attributes:
        path: the file.
        top: (label, probability) pairs, best first; empty when ``silent``.
        start_s: window start in seconds (``None`` for a whole-file row).
        end_s: window end in seconds (``None`` for a whole-file row).
        silent: the window (or the whole file) is below the silence threshold and was not tagged.
        probabilities: every class's probability [C] of a timeline row (``None`` for a silent
            window and for a whole-file row).
    """

    path: Path
    top: list[tuple[str, float]]
    start_s: float | None = None
    end_s: float | None = None
    silent: bool = False
    probabilities: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FileError:
    """A file that could not be read (or stopped being readable part way); ``str(error)`` names it.

    Rows of the file's earlier windows (timeline) come before it."""

    path: Path
    error: AudioFileError


@dataclass(frozen=True)
class _Input:
    """One engine input of a file (``audio`` ``None``: a silent window, never sent), with what
    its row needs (``key``) and how far into the file it reaches (``position_s``)."""

    index: int
    audio: np.ndarray | None
    key: object
    position_s: float


@dataclass(frozen=True)
class _FileStart:
    index: int
    path: Path
    duration_s: float


@dataclass(frozen=True)
class _FileEnd:
    index: int
    path: Path
    silent: bool = False
    error: AudioFileError | None = None


_Item = _Input | _FileStart | _FileEnd


def tag_files(
    engine: Engine,
    paths: Sequence[str | Path],
    step_samples: int,
    top_k: int = 3,
    silence_threshold_dbfs: float | None = SILENCE_THRESHOLD_DBFS,
    progress: bool | None = None,
    weighting: str = "energy",
) -> Iterator[TagRow | FileError]:
    """One whole-file row per file, by the test-time procedure with ``step_samples``.

    The inputs of a file are those of :func:`rtag.tta.tag_clip` (crops every ``step_samples``
    and one flush with the end; a file shorter than a window zero-padded at every position),
    combined by geometric mean, weighed by their energy (default) or alike (``weighting="equal"``).
    A file whose loudest 2048-sample frame is below ``silence_threshold_dbfs`` (default: the
    runtime's; ``None``: never) is silent: its row has no tags and ``silent=True``.

    Args:
        engine: what tags the inputs.
        paths: the audio files, in the order their rows come out.
        step_samples: step between inputs (5120 in the papers, 51200 in the efficient mode).
        top_k: labels per row.
        silence_threshold_dbfs: see above.
        progress: a progress bar per file on stderr (default: when stderr is a terminal).
        weighting: ``"energy"`` (default) or ``"equal"`` (the papers'); see :mod:`rtag.tta`.
    """
    check_weighting(weighting)
    rumble_filter = rumble_filter_of(engine)

    def items(index: int, path: Path, blocks: Iterable[np.ndarray]) -> Iterator[_Item]:
        meter = LevelMeter()
        read_s = 0.0

        def metered() -> Iterator[np.ndarray]:
            nonlocal read_s
            for block in blocks:
                meter.add(block)
                read_s += block.shape[0] / engine.sample_rate_hz
                yield block

        for crop in tta_stream(metered(), engine.window_samples, step_samples):
            yield _Input(index, crop, None, read_s)
        yield _FileEnd(index, path, silent=is_silent(meter.level_dbfs, silence_threshold_dbfs))

    means: dict[int, GeometricMean] = {}
    for item, probs in _run(engine, paths, items, progress):
        if isinstance(item, _Input):
            assert item.audio is not None
            means.setdefault(item.index, GeometricMean()).add(
                probs[None, :], input_weights(item.audio[None, :], weighting, rumble_filter))
        elif not isinstance(item, _FileEnd):
            continue
        elif item.error is not None:
            means.pop(item.index, None)
            yield FileError(item.path, item.error)
        else:
            mean = means.pop(item.index)
            yield TagRow(item.path, [], silent=True) if item.silent else TagRow(
                item.path, top_labels(mean.result(), engine.labels, top_k))


def timeline_files(
    engine: Engine,
    paths: Sequence[str | Path],
    top_k: int = 3,
    silence_threshold_dbfs: float | None = SILENCE_THRESHOLD_DBFS,
    progress: bool | None = None,
) -> Iterator[TagRow | FileError]:
    """One row per streaming window (the model's window and hop) of every file, each window's
    own probabilities (:func:`file_windows`); arguments as :func:`tag_files`."""
    for item in file_windows(engine, paths, silence_threshold_dbfs, progress):
        if isinstance(item, FileError):
            yield item
            continue
        path, window, probs = item
        top = [] if probs is None else top_labels(probs, engine.labels, top_k)
        yield TagRow(path, top, window.start_s, window.end_s, probs is None, probs)


def file_windows(
    engine: Engine,
    paths: Sequence[str | Path],
    silence_threshold_dbfs: float | None = SILENCE_THRESHOLD_DBFS,
    progress: bool | None = None,
) -> Iterator[tuple[Path, Window, np.ndarray | None] | FileError]:
    """Every streaming window of every file with its probabilities [C] (``None``: silent).

    The windows are those a replay through :class:`~rtag.stream.StreamTagger` cuts (the same
    grid, the same streaming resampler). The audio after the last full window is one
    zero-padded window (a file shorter than a window gives that one). Windows below
    ``silence_threshold_dbfs`` (default: the runtime's; ``None``: none) never reach the engine.
    Arguments as :func:`tag_files`.
    """

    def items(index: int, path: Path, blocks: Iterable[np.ndarray]) -> Iterator[_Item]:
        scheduler = WindowScheduler(engine.window_samples, engine.hop_samples, engine.sample_rate_hz)

        def inputs(windows: Iterable[Window]) -> Iterator[_Input]:
            for window in windows:
                quiet = is_silent(window_level_dbfs(window.audio), silence_threshold_dbfs)
                yield _Input(index, None if quiet else window.audio, (path, window), window.end_s)

        for block in blocks:
            yield from inputs(scheduler.push(block, 0.0))
        tail = scheduler.flush(0.0)
        yield from inputs([tail] if tail is not None else [])
        yield _FileEnd(index, path)

    for item, probs in _run(engine, paths, items, progress):
        if isinstance(item, _Input):
            path, window = item.key  # type: ignore[misc]
            yield path, window, probs
        elif isinstance(item, _FileEnd) and item.error is not None:
            yield FileError(item.path, item.error)


@dataclass(frozen=True)
class Segment:
    """A stretch of a file where a tag was on, as the stream's events would report it.

    Attributes:
        path: the file.
        label: class name.
        start_s: the start event's time (:class:`~rtag.smoother.TagEvent`).
        end_s: the end event's time.
        probability: the probability at the start decision.
    """

    path: Path
    label: str
    start_s: float
    end_s: float
    probability: float


def segment_files(
    engine: Engine,
    paths: Sequence[str | Path],
    config: RuntimeConfig | None = None,
    progress: bool | None = None,
) -> Iterator[Segment | FileError]:
    """The tag segments of every file: its windows (:func:`file_windows`) through the stream's
    smoothing and event rules (:class:`~rtag.smoother.EventTracker`, with ``config``'s keys,
    default the runtime defaults), each file's segments in order of their start."""
    config = config or RuntimeConfig()
    items = file_windows(engine, paths, config.silence_threshold_dbfs, progress)
    for path, of_file in itertools.groupby(items, key=lambda item: item.path if isinstance(item, FileError) else item[0]):
        tracker = EventTracker(engine.labels, config)
        events: list[TagEvent] = []
        error: FileError | None = None
        for item in of_file:
            if isinstance(item, FileError):
                error = item
            else:
                events += tracker.window(item[1], item[2])[1]
        yield from _segments(Path(path), [*events, *tracker.finish()])
        if error is not None:
            yield error


def _segments(path: Path, events: list[TagEvent]) -> list[Segment]:
    """The segments of one file's events (every start is ended), in order of their start."""
    starts: dict[str, TagEvent] = {}
    segments = []
    for event in events:
        if event.kind == "start":
            starts[event.label] = event
        else:
            start = starts.pop(event.label)
            segments.append(Segment(path, event.label, start.time_s, event.time_s, start.probability))
    return sorted(segments, key=lambda segment: (segment.start_s, segment.label))


def _run(
    engine: Engine,
    paths: Sequence[str | Path],
    file_items: Callable[[int, Path, Iterable[np.ndarray]], Iterator[_Item]],
    progress: bool | None,
) -> Iterator[tuple[_Item, np.ndarray | None]]:
    """Every item of every file with its probabilities (``None`` for markers and silent
    windows), in order; the items are made in a background thread, the engine runs full
    batches on this one."""
    show = sys.stderr.isatty() if progress is None else progress
    bar: tqdm | None = None
    pending: list[_Item] = []
    sounding = 0  # inputs in pending that go to the engine

    def flush() -> Iterator[tuple[_Item, np.ndarray | None]]:
        nonlocal bar
        for done in _predicted(engine, pending):
            bar = _show_progress(bar, done[0], show)
            yield done

    try:
        for item in _prefetched(_all_items(paths, file_items, engine.sample_rate_hz), PREFETCH_INPUTS):
            pending.append(item)
            sounding += isinstance(item, _Input) and item.audio is not None
            # a full batch runs; so do long runs of silent windows and markers, so their rows are not held back
            if sounding >= BATCH_INPUTS or len(pending) >= PREFETCH_INPUTS:
                yield from flush()
                pending, sounding = [], 0
        yield from flush()
    finally:
        if bar is not None:
            bar.close()


def _predicted(engine: Engine, items: list[_Item]) -> Iterator[tuple[_Item, np.ndarray | None]]:
    batch = [i.audio for i in items if isinstance(i, _Input) and i.audio is not None]
    probs = iter(engine.predict(np.stack(batch)) if batch else [])
    for item in items:
        yield item, next(probs) if isinstance(item, _Input) and item.audio is not None else None


def _show_progress(bar: tqdm | None, item: _Item, show: bool) -> tqdm | None:
    """Open a file's bar at its start, move it with its inputs, close it at its end."""
    if not show:
        return None
    if isinstance(item, _FileStart):
        return tqdm(total=round(item.duration_s, 1), desc=item.path.name, unit="s", leave=False, file=sys.stderr)
    if bar is not None and isinstance(item, _Input):
        bar.update(max(0.0, round(min(item.position_s, bar.total) - bar.n, 3)))
    if bar is not None and isinstance(item, _FileEnd):
        bar.close()
        return None
    return bar


def _all_items(
    paths: Sequence[str | Path],
    file_items: Callable[[int, Path, Iterable[np.ndarray]], Iterator[_Item]],
    sample_rate_hz: int,
) -> Iterator[_Item]:
    for index, raw in enumerate(paths):
        path = Path(raw)
        try:
            blocks = AudioBlocks(path, sample_rate_hz, FILE_BLOCK_FRAMES)
            yield _FileStart(index, path, blocks.duration_s)
            yield from file_items(index, path, blocks)
        except AudioFileError as exc:
            yield _FileEnd(index, path, error=exc)


_DONE = object()


def _prefetched(items: Iterator[_Item], depth: int) -> Iterator[_Item]:
    """``items``, made in a background thread at most ``depth`` inputs ahead; an exception
    raised there is raised here. Leaving early stops the thread."""
    ahead = queue.Queue[object](maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ahead.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            ahead.put(exc)

    thread = threading.Thread(target=produce, name="rtag-file-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = ahead.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                ahead.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
