"""The console monitor of ``rtag listen``: top labels with bars, input level, lag and losses."""

from __future__ import annotations

import sys
from typing import IO

from rtag.labels import SILENCE_DISPLAY_NAME, display_label
from rtag.smoother import TagEvent
from rtag.sources import DeviceEvent
from rtag.stream_results import StreamStats, WindowResult

__all__ = ["ConsoleMonitor"]

BAR_WIDTH = 30


def _counters(stats: StreamStats) -> str:
    latency = f"latency {stats.latency_ms_last:6.1f} ms  " if stats.realtime else ""
    return f"lag {stats.lag_s:4.1f} s  {latency}lost {stats.lost_samples} samples  dropped {stats.windows_dropped} windows"


class ConsoleMonitor:
    """Show the stream on a console.

    On a terminal the display is redrawn in place: one status line (stream time, the window's
    level in dBFS, lag, latency (live sources only: a replay as fast as possible has none that
    means anything), lost samples, dropped windows) and the top ``top_k`` smoothed labels with
    bars, or "silence" for a silent window; events are printed above it. ``_other`` is shown as
    "other sound". When the output is not a terminal, every window and event becomes one plain
    line instead. With ``smoothing_windows`` above 1 the labels are the geometric mean of the last
    K windows, headed "mean of K windows" so nobody reads them as the newest window's own; with 1
    they are each window's own probabilities.

    Args:
        top_k: labels shown per window (default 3).
        smoothing_windows: show the mean of the last K windows (K > 1, ``rtag listen`` with
            ``onset: smoothed``) or each window's own probabilities (1, default; what the default
            ``onset: window`` starts tags on).
        stream: where to write (default ``sys.stdout``).
        interactive: force redrawing on (``True``) or off (``False``); default: whether
            ``stream`` is a terminal.
    """

    def __init__(self, top_k: int = 3, stream: IO[str] | None = None, interactive: bool | None = None,
                 smoothing_windows: int = 1) -> None:
        self.top_k = top_k
        self._smoothed = smoothing_windows > 1
        self._smoothed_note = f"mean of {smoothing_windows} windows: " if self._smoothed else ""
        self._stream = stream if stream is not None else sys.stdout
        self._interactive = self._stream.isatty() if interactive is None else interactive
        self._drawn_lines = 0

    def _erase(self) -> None:
        if self._drawn_lines:
            self._stream.write(f"\x1b[{self._drawn_lines}F\x1b[J")
            self._drawn_lines = 0

    def on_window(self, result: WindowResult) -> None:
        """Draw (or print) one window."""
        top = result.top(self.top_k, smoothed=self._smoothed)
        status = f"{result.end_s:8.2f} s  level {result.level_dbfs:6.1f} dBFS  {_counters(result.stats)}"
        if not self._interactive:
            labels = SILENCE_DISPLAY_NAME if result.silent else self._smoothed_note + ", ".join(
                f"{display_label(label)} {p:.2f}" for label, p in top)
            self._stream.write(f"{status}  | {labels}\n")
            self._stream.flush()
            return
        self._erase()
        lines = [status]
        if result.silent:
            lines.append(f"  {SILENCE_DISPLAY_NAME}")
        elif self._smoothed_note:
            lines.append(f"  {self._smoothed_note.rstrip(' :')}:")
        for label, p in top:
            filled = round(p * BAR_WIDTH)
            lines.append(f"  {display_label(label)[:28]:<28} {'#' * filled}{'.' * (BAR_WIDTH - filled)} {p:5.2f}")
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()
        self._drawn_lines = len(lines)

    def on_event(self, event: TagEvent) -> None:
        """Print one event line (above the live display on a terminal)."""
        self._erase()
        self._stream.write(f"{event}\n")
        self._stream.flush()

    def on_device_event(self, event: DeviceEvent) -> None:
        """Print one line when the input device is lost, fails to reopen, or is restored."""
        self._erase()
        self._stream.write(f"{event}\n")
        self._stream.flush()

    def close(self) -> None:
        """Leave the last display on screen and end the line."""
        self._stream.flush()
