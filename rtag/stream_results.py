"""What the streaming runtime reports: per-window results and the running counters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtag.labels import top_labels
from rtag.scheduler import Window

__all__ = ["StreamStats", "WindowResult"]


@dataclass(frozen=True)
class StreamStats:
    """A snapshot of the stream's counters (see docs/streaming.md for each one).

    Attributes:
        sample_rate_hz: the model rate, the unit of window positions.
        capture_rate_hz: the source's rate, the unit of ``captured_samples`` and ``lost_samples``.
        captured_samples: stream position at the capture rate: samples the source wrote into
            the ring buffer, plus the samples of device gaps.
        lost_samples: samples overwritten in the ring buffer before the scheduler read them.
        input_overflows: overflows the audio device reported (audio lost before the callback).
        windows_emitted: windows the scheduler cut.
        windows_skipped: windows never cut because lost samples fell inside them.
        windows_padded: tail windows (0 or 1) cut when a finite source ended, zero-padded to
            the window (part of ``windows_emitted``).
        windows_dropped: windows discarded from a full engine queue (engine slower than real time).
        windows_processed: windows the engine tagged, plus the silent windows.
        results_dropped: results discarded from a full callback queue (callbacks too slow).
        callback_errors: exceptions raised by callbacks and sinks (logged, then ignored).
        latency_ms_last: latency of the latest window, from its last sample's capture to its result.
        latency_ms_p50: median latency over the most recent windows (up to 1000).
        latency_ms_p99: 99th percentile latency over the same windows.
        lag_s: stream time captured but not yet covered by a processed window.
        max_capture_write_ms: longest time the capture callback spent writing one block.
        device_connected: whether the input device is capturing now (``False`` while a lost
            device is being reopened; always ``True`` for replays).
        device_losses: times the input device was lost.
        device_gap_samples: samples (capture rate) the device was away; they are part of
            ``captured_samples`` (stream positions run on through a gap) and of ``lost_samples``.
        windows_silent: processed windows below ``silence_threshold_dbfs``, never sent to the
            engine (part of ``windows_processed``).
        realtime: the source delivers audio at the pace of time (a microphone, a paced replay);
            for a replay as fast as possible the latencies only measure queueing, and the
            console, JSON lines and summary leave them out.
    """

    sample_rate_hz: int
    capture_rate_hz: int
    captured_samples: int
    lost_samples: int
    input_overflows: int
    windows_emitted: int
    windows_skipped: int
    windows_dropped: int
    windows_processed: int
    results_dropped: int
    callback_errors: int
    latency_ms_last: float
    latency_ms_p50: float
    latency_ms_p99: float
    lag_s: float
    max_capture_write_ms: float
    device_connected: bool = True
    device_losses: int = 0
    device_gap_samples: int = 0
    windows_silent: int = 0
    windows_padded: int = 0
    realtime: bool = True

    @property
    def captured_s(self) -> float:
        """Seconds of audio captured."""
        return self.captured_samples / self.capture_rate_hz


@dataclass(frozen=True)
class WindowResult:
    """The engine's answer for one window, or the silence gate's.

    Attributes:
        window: the window (stream position, audio, capture time).
        labels: class names in probability order.
        probabilities: this window's class probabilities [C]; all zero for a silent window.
        smoothed: geometric mean of the last K windows' probabilities [C] (what events use),
            restarted after silence; all zero for a silent window.
        latency_ms: time from the capture of the window's last sample to this result.
        level_dbfs: level of the whole window in dBFS, the RMS of its loudest 2048-sample
            frame (:func:`rtag.level.window_level_dbfs`; -120 for digital silence).
        stats: the stream's counters when the result was made.
        silent: the window's level is below ``silence_threshold_dbfs``: it was not sent to the
            engine, and :meth:`top` is empty (default ``False``).
    """

    window: Window
    labels: tuple[str, ...]
    probabilities: np.ndarray
    smoothed: np.ndarray
    latency_ms: float
    level_dbfs: float
    stats: StreamStats
    silent: bool = False

    @property
    def start_sample(self) -> int:
        """Stream position of the window's first sample."""
        return self.window.start_sample

    @property
    def start_s(self) -> float:
        """Stream time of the window's first sample in seconds."""
        return self.window.start_s

    @property
    def end_s(self) -> float:
        """Stream time just after the window's last sample in seconds."""
        return self.window.end_s

    def top(self, k: int = 3, smoothed: bool = True) -> list[tuple[str, float]]:
        """The ``k`` most probable labels with their probabilities, best first; empty when silent.

        Args:
            k: how many (default 3).
            smoothed: rank the smoothed probabilities (default) or this window's own.
        """
        if self.silent:
            return []
        return top_labels(self.smoothed if smoothed else self.probabilities, self.labels, k)
