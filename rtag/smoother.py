"""Turning per-window probabilities into stable tags and on/off events.

:class:`ProbabilitySmoother` keeps the last K window probabilities and returns their geometric
mean (computed in log space, as the papers combine test-time crops). :class:`TagEventDetector`
applies hysteresis: a tag starts when it reaches ``on_threshold`` and ends only when it falls
below the lower ``off_threshold``, so a caller hears "Bark started at 12.31 s" once and "Bark
ended at 15.10 s" later, not a report every hop.

What is compared with the thresholds is the ``onset`` scheme. ``"window"`` (the default) takes,
per label, the larger of the window's own probability and the smoothed one: a sound starts on
the first window that hears it (within one hop of its onset), and the geometric mean only holds
a tag through a single weak window. ``"smoothed"`` compares the geometric mean alone, which is
slow to rise (a mean of K windows is dominated by its lowest: a new sound needs about K windows)
and so delays onsets by up to K - 1 hops and misses sounds shorter than K windows.

Silence is not a sound: a window the level gate calls silent (:mod:`rtag.level`) clears the
smoother (:meth:`ProbabilitySmoother.reset`) and goes to :meth:`TagEventDetector.silence`, which
ends every active tag and starts none. :class:`EventTracker` is the two together, as the stream
and ``rtag tag --timeline --segments`` use them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from rtag.labels import OTHER_LABEL, display_label
from rtag.scheduler import Window
from rtag.tta import geometric_mean

if TYPE_CHECKING:
    from rtag.runtime_config import RuntimeConfig

__all__ = ["ONSET_SCHEMES", "EventTracker", "ProbabilitySmoother", "TagEvent", "TagEventDetector"]

ONSET_SCHEMES = ("window", "smoothed")


class ProbabilitySmoother:
    """Geometric mean of the last ``smoothing_windows`` probability vectors.

    Args:
        smoothing_windows: K, how many recent windows are combined (default 3; 1 returns each
            window's probabilities unchanged apart from renormalisation).
    """

    def __init__(self, smoothing_windows: int = 3) -> None:
        if smoothing_windows < 1:
            raise ValueError(f"smoothing_windows must be at least 1, not {smoothing_windows}")
        self._recent: deque[np.ndarray] = deque(maxlen=smoothing_windows)

    def update(self, probabilities: np.ndarray) -> np.ndarray:
        """Add one window's probabilities [C] and return the smoothed vector [C]."""
        self._recent.append(np.asarray(probabilities, dtype=np.float32))
        return geometric_mean(np.stack(self._recent), axis=0)

    def reset(self) -> None:
        """Forget every window so far (after silence): the next window starts the mean afresh."""
        self._recent.clear()


@dataclass(frozen=True)
class TagEvent:
    """A tag starting or ending in the stream.

    Attributes:
        label: class name.
        kind: ``"start"`` or ``"end"``.
        sample: stream position of the event in samples: for a start, where the sound most
            likely began: the end of the window before the one that raised the tag (that window
            did not hear enough of it; the first window of a stream, or after silence or lost
            audio, gives its own start); for an end, one past the last sample of the last
            window that still held it.
        sample_rate_hz: rate of ``sample``.
        probability: smoothed probability at the decision.
        window_index: grid index of the window at which the decision was taken.
    """

    label: str
    kind: Literal["start", "end"]
    sample: int
    sample_rate_hz: int
    probability: float
    window_index: int

    @property
    def time_s(self) -> float:
        """Stream time of the event in seconds."""
        return self.sample / self.sample_rate_hz

    def __str__(self) -> str:
        verb = "started" if self.kind == "start" else "ended"
        return f"{display_label(self.label)} {verb} at {self.time_s:.2f} s (p={self.probability:.2f})"


class TagEventDetector:
    """Hysteresis on smoothed probabilities, one state per label.

    Args:
        labels: class names in probability order.
        on_threshold: a tag starts when its smoothed probability is at least this (default 0.5).
        off_threshold: an active tag ends when it falls below this (default 0.3).
        ignored_labels: labels that never start or end a tag (default none; the stream passes
            ``_other`` unless ``report_other`` is set).
        onset: ``"window"`` (default) or ``"smoothed"``: what is compared with the thresholds
            (see the module's documentation).
    """

    def __init__(
        self,
        labels: Sequence[str],
        on_threshold: float = 0.5,
        off_threshold: float = 0.3,
        ignored_labels: Collection[str] = (),
        onset: str = "window",
    ) -> None:
        if not 0.0 <= off_threshold <= on_threshold <= 1.0:
            raise ValueError(
                f"need 0 <= off_threshold <= on_threshold <= 1, not {off_threshold} and {on_threshold}"
            )
        if onset not in ONSET_SCHEMES:
            raise ValueError(f"onset must be one of {', '.join(ONSET_SCHEMES)}, not {onset!r}")
        self.onset = onset
        self.labels = tuple(labels)
        self.on_threshold = on_threshold
        self.off_threshold = off_threshold
        self._active = np.zeros(len(self.labels), dtype=bool)
        self._reported = np.array([label not in ignored_labels for label in self.labels], dtype=bool)
        self._last_on_end = np.zeros(len(self.labels), dtype=np.int64)
        self._last_window: Window | None = None
        self._last_smoothed = np.zeros(len(self.labels), dtype=np.float32)
        self._after_silence = False

    @property
    def active_labels(self) -> tuple[str, ...]:
        """Labels currently on."""
        return tuple(label for label, on in zip(self.labels, self._active) if on)

    def update(self, smoothed: np.ndarray, window: Window, probabilities: np.ndarray | None = None) -> list[TagEvent]:
        """Events caused by ``window``, from its smoothed probabilities [C] and, for the
        ``"window"`` onset, its own ``probabilities`` [C] (default: the smoothed ones); ends
        first, then starts. Each event's ``probability`` is the value compared."""
        rate = window.sample_rate_hz
        value = smoothed if self.onset == "smoothed" or probabilities is None else np.maximum(smoothed, probabilities)
        ends = np.flatnonzero(self._active & (value < self.off_threshold))
        starts = np.flatnonzero(~self._active & self._reported & (value >= self.on_threshold))
        previous = self._last_window
        follows = previous is not None and previous.index == window.index - 1 and not self._after_silence
        start_sample = previous.end_sample if follows and previous is not None else window.start_sample
        events = [
            TagEvent(self.labels[i], "end", int(self._last_on_end[i]), rate, float(value[i]), window.index)
            for i in ends
        ]
        events += [
            TagEvent(self.labels[i], "start", start_sample, rate, float(value[i]), window.index)
            for i in sorted(starts, key=lambda i: -value[i])
        ]
        self._active[ends] = False
        self._active[starts] = True
        self._last_on_end[self._active] = window.end_sample
        self._last_window = window
        self._last_smoothed = value
        self._after_silence = False
        return events

    def silence(self, window: Window) -> list[TagEvent]:
        """End every active tag because ``window`` is silent; nothing starts on silence.

        Each tag ends one past the last sample of the last window that held it (probability 0).
        """
        silent = np.zeros(len(self.labels), dtype=np.float32)
        events = self._end_active(window.sample_rate_hz, silent, window.index)
        self._last_window = window
        self._last_smoothed = silent
        self._after_silence = True
        return events

    def finish(self) -> list[TagEvent]:
        """End every active tag (at the end of its last window); call when the stream stops."""
        if self._last_window is None:
            return []
        window = self._last_window
        return self._end_active(window.sample_rate_hz, self._last_smoothed, window.index)

    def _end_active(self, sample_rate_hz: int, smoothed: np.ndarray, window_index: int) -> list[TagEvent]:
        events = [
            TagEvent(self.labels[i], "end", int(self._last_on_end[i]), sample_rate_hz, float(smoothed[i]), window_index)
            for i in np.flatnonzero(self._active)
        ]
        self._active[:] = False
        return events


class EventTracker:
    """The smoother and the event detector of a stream, fed one window at a time.

    Args:
        labels: class names in probability order.
        config: the runtime settings used: ``smoothing_windows``, ``on_threshold``,
            ``off_threshold``, ``onset`` and ``report_other`` (``_other`` raises no events
            unless it is set).
    """

    def __init__(self, labels: Sequence[str], config: RuntimeConfig) -> None:
        self.smoother = ProbabilitySmoother(config.smoothing_windows)
        self.detector = TagEventDetector(
            labels, config.on_threshold, config.off_threshold,
            ignored_labels=() if config.report_other else (OTHER_LABEL,), onset=config.onset,
        )

    def window(self, window: Window, probabilities: np.ndarray | None) -> tuple[np.ndarray, list[TagEvent]]:
        """The smoothed probabilities [C] and the events of ``window``; ``probabilities``
        ``None`` marks a silent window (it clears the smoother, ends every tag; zeros returned)."""
        if probabilities is None:
            self.smoother.reset()
            return np.zeros(len(self.detector.labels), dtype=np.float32), self.detector.silence(window)
        smoothed = self.smoother.update(probabilities)
        return smoothed, self.detector.update(smoothed, window, probabilities)

    def finish(self) -> list[TagEvent]:
        """End every active tag (the stream or file is over)."""
        return self.detector.finish()
