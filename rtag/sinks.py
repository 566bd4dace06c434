"""Where results go: user callbacks, the JSON-lines writer, the console monitor.

All sinks run on one dispatcher thread, away from both the capture path and the engine. An
exception raised by a sink is logged, counted in ``callback_errors`` and otherwise ignored; a slow
sink lets the dispatcher's bounded queue fill, after which the oldest results are dropped and
counted in ``results_dropped`` (in lossless replay the engine waits instead).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from rtag.smoother import TagEvent
from rtag.sources import DeviceEvent
from rtag.stream_results import WindowResult

__all__ = ["CallbackDispatcher", "CallbackSink", "JsonLinesWriter", "Sink"]

logger = logging.getLogger("rtag.stream")


class Sink(Protocol):
    """Receives results and events on the dispatcher thread.

    Any of the four methods may be left out; ``close`` is called once when the stream stops.
    """

    def on_window(self, result: WindowResult) -> None:
        """Called for every processed window, in stream order."""
        ...

    def on_event(self, event: TagEvent) -> None:
        """Called for every tag start or end, in stream order."""
        ...

    def on_device_event(self, event: DeviceEvent) -> None:
        """Called when the input device is lost, fails to reopen, or is restored."""
        ...

    def close(self) -> None:
        """Called when the stream stops (flush files here)."""
        ...


class CallbackSink:
    """Adapt plain functions to a :class:`Sink`.

    Args:
        on_window: called with each :class:`~rtag.stream_results.WindowResult` (default none).
        on_event: called with each :class:`~rtag.smoother.TagEvent` (default none).
        on_device_event: called with each :class:`~rtag.sources.DeviceEvent` (default none).
    """

    def __init__(
        self,
        on_window: Callable[[WindowResult], Any] | None = None,
        on_event: Callable[[TagEvent], Any] | None = None,
        on_device_event: Callable[[DeviceEvent], Any] | None = None,
    ) -> None:
        if on_window is not None:
            self.on_window = on_window
        if on_event is not None:
            self.on_event = on_event
        if on_device_event is not None:
            self.on_device_event = on_device_event


class CallbackDispatcher:
    """Run sinks on their own thread with a bounded queue.

    Args:
        sinks: the sinks, called in order.
        results_queue: most results waiting before the oldest is dropped (default 64).
        lossless: wait for room instead of dropping (default ``False``).
    """

    def __init__(self, sinks: Sequence[object], *, results_queue: int = 64, lossless: bool = False) -> None:
        self._sinks = list(sinks)
        self._capacity = results_queue
        self._lossless = lossless
        self._queue: deque[tuple[WindowResult | None, list[TagEvent | DeviceEvent]]] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self.results_dropped = 0
        self.callback_errors = 0
        self._thread = threading.Thread(target=self._run, name="rtag-callbacks", daemon=True)

    def start(self) -> None:
        """Start the dispatcher thread."""
        self._thread.start()

    def put(self, result: WindowResult | None, events: list[TagEvent | DeviceEvent]) -> None:
        """Queue a result (``None`` for events alone) and its events for the sinks."""
        with self._condition:
            if self._lossless:
                while len(self._queue) >= self._capacity and self._thread.is_alive():
                    self._condition.wait(0.1)
            elif len(self._queue) >= self._capacity:
                self._drop_oldest_result()
            self._queue.append((result, events))
            self._condition.notify_all()

    def put_device_event(self, event: DeviceEvent) -> None:
        """Queue a device event for the sinks (from the device's watchdog thread)."""
        self.put(None, [event])

    def _drop_oldest_result(self) -> None:
        """Drop the oldest queued window result; its events are kept (they are never dropped)."""
        for position, (result, events) in enumerate(self._queue):
            if result is not None:
                self._queue[position] = (None, events)
                self.results_dropped += 1
                break

    def close(self) -> None:
        """Deliver what is queued, close every sink, and stop the thread."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join()

    def _call(self, sink: object, method: str, argument: object | None = None) -> None:
        function = getattr(sink, method, None)
        if function is None:
            return
        try:
            function() if argument is None else function(argument)
        except Exception:
            self.callback_errors += 1
            logger.exception("%s.%s raised; the stream goes on", type(sink).__name__, method)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if not self._queue:
                    break
                result, events = self._queue.popleft()
                self._condition.notify_all()
            for sink in self._sinks:
                if result is not None:
                    self._call(sink, "on_window", result)
                for event in events:
                    self._call(sink, "on_device_event" if isinstance(event, DeviceEvent) else "on_event", event)
        for sink in self._sinks:
            self._call(sink, "close")


TIME_DECIMALS = 4
"""Decimals of every time in seconds that rtag writes (JSON lines and CSV alike)."""

PROBABILITY_DECIMALS = 5
"""Decimals of every probability that rtag writes."""


def labelled_probabilities(top: Sequence[tuple[str, float]]) -> list[dict[str, object]]:
    """``[(label, p), ...]`` as the JSON objects rtag writes everywhere:
    ``[{"label": "Bark", "probability": 0.61}, ...]``."""
    return [{"label": label, "probability": round(float(p), PROBABILITY_DECIMALS)} for label, p in top]


class JsonLinesWriter:
    """Write every window result and event as one JSON object per line.

    Lines look like ``{"type": "window", "index": 3, "start_sample": 153600, "start_s": 3.483,
    "end_s": 5.483, "latency_ms": 41.2, "level_dbfs": -23.1, "silent": false, "padded_samples": 0,
    "top": [{"label": "Bark", "probability": 0.61}, ...], "top_smoothed": [...]}`` (the schema
    of ``rtag tag --format jsonl`` too: :func:`labelled_probabilities`; ``level_dbfs``: the
    whole window's level; ``padded_samples``: zeros after the end of a finished source, in the
    tail window that tags the audio after the last full window, else 0; ``silent``: below
    ``silence_threshold_dbfs``, not tagged, ``top`` and ``top_smoothed`` empty; ``top``: the window's own probabilities; ``top_smoothed``: after the
    K-window geometric mean; labels by their names, ``_other`` included) and
    ``{"type": "event", "kind": "start", "label": "Bark", "sample": 153600, "time_s": 3.483,
    "probability": 0.61, "window_index": 3}`` and, when the input device is lost, fails to reopen
    or is restored, ``{"type": "device", "kind": "lost", "device": "USB Mic", "sample": 441000,
    "gap_samples": 0, "attempt": 0, "message": "its stream ended"}`` (``sample`` at the capture
    rate). Each line is flushed as it is written, so a reader (or a killed process) never sees
    a partial record. A failed write (a full disk) is kept in :attr:`failure` and ends the writing;
    ``rtag listen`` then stops with an error.

    Args:
        path: output file (created or truncated), or an open text stream.
        top_k: labels listed per window (default 3).

    Attributes:
        failure: the ``OSError`` of the first failed write, or ``None``.
    """

    def __init__(self, path: str | Path | IO[str], top_k: int = 3) -> None:
        if isinstance(path, (str, Path)):
            self._file: IO[str] = open(path, "w", encoding="utf-8")
            self._owned = True
        else:
            self._file = path
            self._owned = False
        self.top_k = top_k
        self.failure: OSError | None = None

    def _write(self, record: dict[str, object]) -> None:
        if self.failure is not None:
            return
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:
            self.failure = exc
            logger.error("%s: writing JSON lines failed (%s); no more lines are written", self._name, exc)

    @property
    def _name(self) -> str:
        return str(getattr(self._file, "name", "JSON lines"))

    def on_window(self, result: WindowResult) -> None:
        """Write one window line."""
        record = {
            "type": "window",
            "index": result.window.index,
            "start_sample": result.start_sample,
            "start_s": round(result.start_s, TIME_DECIMALS),
            "end_s": round(result.end_s, TIME_DECIMALS),
            "latency_ms": round(result.latency_ms, 2) if result.stats.realtime else None,
            "level_dbfs": round(result.level_dbfs, 2),
            "silent": result.silent,
            "padded_samples": result.window.padded_samples,
            "top": labelled_probabilities(result.top(self.top_k, smoothed=False)),
            "top_smoothed": labelled_probabilities(result.top(self.top_k)),
        }
        self._write(record)

    def on_event(self, event: TagEvent) -> None:
        """Write one event line."""
        record = {
            "type": "event",
            "kind": event.kind,
            "label": event.label,
            "sample": event.sample,
            "time_s": round(event.time_s, TIME_DECIMALS),
            "probability": round(event.probability, PROBABILITY_DECIMALS),
            "window_index": event.window_index,
        }
        self._write(record)

    def on_device_event(self, event: DeviceEvent) -> None:
        """Write one device line."""
        record = {
            "type": "device",
            "kind": event.kind,
            "device": event.device,
            "sample": event.sample,
            "gap_samples": event.gap_samples,
            "attempt": event.attempt,
            "message": event.message,
        }
        self._write(record)

    def close(self) -> None:
        """Flush, and close the file if this writer opened it."""
        try:
            self._file.flush()
            if self._owned:
                self._file.close()
        except OSError as exc:
            self.failure = self.failure or exc
