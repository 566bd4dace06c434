"""The inference worker: a thread that owns the engine.

Before the first window the worker warms the engine up on its own thread
(:func:`rtag.engines.warm_up_engine`), so the first window is as fast as the others.

Windows arrive through a bounded queue. The worker takes everything queued as one batch, measures
each window's level, runs the engine once on the windows that are not silent, and for each window
in stream order smooths the probabilities, updates the event detector and hands the result on. A
silent window (level below ``silence_threshold_dbfs``) never reaches the engine: it clears the
smoother, ends the active tags and is delivered with ``silent=True``.

When the engine is slower than real time the queue fills and :meth:`InferenceWorker.submit`
drops the oldest waiting window (counted in ``windows_dropped``) instead of waiting, so the
capture side never blocks. In lossless mode (as-fast-as-possible replay) ``submit`` waits for
room instead and nothing is dropped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from rtag.engines import Engine, warm_up_engine
from rtag.level import is_silent, window_level_dbfs
from rtag.scheduler import Window
from rtag.smoother import EventTracker, TagEvent
from rtag.stream_results import StreamStats, WindowResult

__all__ = ["InferenceWorker"]

LATENCY_HISTORY_WINDOWS = 1000


class InferenceWorker:
    """Batch windows through an engine on a dedicated thread.

    Args:
        engine: the back end; called only from the worker thread.
        tracker: smooths each window with the previous ones and turns them into start/end events.
        deliver: called on the worker thread with ``(result, events)`` for each window, and
            with ``(None, events)`` for the final end events when the stream closes.
        stats: returns the stream's counters, attached to each result.
        queue_windows: most windows waiting (default 4).
        lossless: wait for queue room instead of dropping (default ``False``).
        silence_threshold_dbfs: windows whose level (:func:`rtag.level.window_level_dbfs`) is
            below this are silent and skip the engine (default ``None``: no gate).
    """

    def __init__(
        self,
        engine: Engine,
        tracker: EventTracker,
        deliver: Callable[[WindowResult | None, list[TagEvent]], None],
        stats: Callable[[], StreamStats],
        *,
        queue_windows: int = 4,
        lossless: bool = False,
        silence_threshold_dbfs: float | None = None,
    ) -> None:
        self.engine = engine
        self._tracker = tracker
        self._deliver = deliver
        self._stats = stats
        self._silence_threshold_dbfs = silence_threshold_dbfs
        self._capacity = queue_windows
        self._lossless = lossless
        self._queue: deque[Window] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self._aborted = False
        self.windows_dropped = 0
        self.windows_processed = 0
        self.windows_silent = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_HISTORY_WINDOWS)
        self.last_end_sample = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rtag-worker", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def submit(self, window: Window) -> None:
        """Queue ``window``; drops the oldest waiting window when full (unless lossless)."""
        with self._condition:
            if self._lossless:
                while len(self._queue) >= self._capacity and not self._aborted:
                    self._condition.wait()
            elif len(self._queue) >= self._capacity:
                self._queue.popleft()
                self.windows_dropped += 1
            self._queue.append(window)
            self._condition.notify_all()

    def close(self, abort: bool = False) -> None:
        """No more windows will come; the thread finishes the queue (unless ``abort``) and exits."""
        with self._condition:
            self._closed = True
            if abort:
                self._aborted = True
                self._queue.clear()
            self._condition.notify_all()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the thread to exit; returns whether it did."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        """True once the thread has exited."""
        return self._thread.ident is not None and not self._thread.is_alive()

    def _take_batch(self) -> list[Window] | None:
        with self._condition:
            while not self._queue and not self._closed:
                self._condition.wait()
            if not self._queue:
                return None
            batch = list(self._queue)
            self._queue.clear()
            self._condition.notify_all()
            return batch

    def _run(self) -> None:
        try:
            warm_up_engine(self.engine)
            while (batch := self._take_batch()) is not None:
                levels_dbfs = [window_level_dbfs(w.audio) for w in batch]
                silent_flags = [is_silent(level, self._silence_threshold_dbfs) for level in levels_dbfs]
                sounding = [w.audio for w, silent in zip(batch, silent_flags) if not silent]
                probabilities = iter(self.engine.predict(np.stack(sounding)) if sounding else ())
                finished_s = time.monotonic()
                for window, level, silent in zip(batch, levels_dbfs, silent_flags):
                    latency_ms = (finished_s - window.capture_time_s) * 1000.0
                    self.latencies_ms.append(latency_ms)
                    self.windows_processed += 1
                    self.windows_silent += int(silent)
                    self.last_end_sample = window.end_sample
                    probs = None if silent else next(probabilities)
                    smoothed, events = self._tracker.window(window, probs)
                    if probs is None:
                        probs = smoothed  # zeros
                    result = WindowResult(
                        window=window,
                        labels=self.engine.labels,
                        probabilities=probs,
                        smoothed=smoothed,
                        latency_ms=latency_ms,
                        level_dbfs=level,
                        stats=self._stats(),
                        silent=silent,
                    )
                    self._deliver(result, events)
            if not self._aborted:
                self._deliver(None, self._tracker.finish())
        except BaseException as exc:  # surfaced through StreamTagger
            self.error = exc
            with self._condition:
                self._aborted = True
                self._queue.clear()
                self._condition.notify_all()
