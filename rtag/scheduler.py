"""Cutting a continuous sample stream into overlapping model windows.

:class:`WindowScheduler` receives model-rate audio in blocks of any size and emits a
:class:`Window` of ``window_samples`` every ``hop_samples`` (88200 and 51200 for the 2 s model).
Window starts lie on a fixed grid (0, hop, 2 * hop, ...) in absolute stream samples, so every
window carries its exact stream position; a gap in the stream (samples lost upstream) skips the
windows that would have covered it and counts them, and the grid continues after the gap. When a
finite stream ends, :meth:`WindowScheduler.flush` cuts one last window at the next grid position,
zero-padded (as the papers pad clips shorter than a window), so the audio after the last full
window is tagged too, and a stream shorter than a window gives one window rather than none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Window", "WindowScheduler"]


@dataclass(frozen=True)
class Window:
    """One model input cut from the stream.

    Attributes:
        index: position on the window grid, ``start_sample // hop_samples``; consecutive
            windows differ by one, so a jump means windows were skipped or dropped.
        start_sample: absolute stream index of ``audio[0]`` at ``sample_rate_hz``.
        audio: float32 samples, shape [window_samples].
        sample_rate_hz: rate of ``audio`` and of the sample indices.
        capture_time_s: ``time.monotonic()`` time at which the window's last sample reached the
            process; latency is measured from here.
        padded_samples: zeros after the stream's last sample (the tail window of a finished
            stream; 0 for every other window).
    """

    index: int
    start_sample: int
    audio: np.ndarray
    sample_rate_hz: int
    capture_time_s: float
    padded_samples: int = 0

    @property
    def num_samples(self) -> int:
        """Length of the window's audio in samples, padding included."""
        return int(self.audio.shape[0])

    @property
    def end_sample(self) -> int:
        """Absolute stream index one past the window's last stream sample (padding excluded)."""
        return self.start_sample + self.num_samples - self.padded_samples

    @property
    def start_s(self) -> float:
        """Stream time of the first sample in seconds."""
        return self.start_sample / self.sample_rate_hz

    @property
    def end_s(self) -> float:
        """Stream time just after the last sample in seconds."""
        return self.end_sample / self.sample_rate_hz


class WindowScheduler:
    """Emit a window of ``window_samples`` every ``hop_samples`` from pushed blocks.

    Args:
        window_samples: window length in samples (the model's input length).
        hop_samples: distance between window starts in samples; may be smaller (overlap),
            equal or larger (gaps) than ``window_samples``.
        sample_rate_hz: rate of the pushed audio (default 44100).
    """

    def __init__(self, window_samples: int, hop_samples: int, sample_rate_hz: int = 44100) -> None:
        if window_samples <= 0 or hop_samples <= 0:
            raise ValueError(
                f"window_samples and hop_samples must be positive, not {window_samples} and {hop_samples}"
            )
        self.window_samples = window_samples
        self.hop_samples = hop_samples
        self.sample_rate_hz = sample_rate_hz
        self._buffer = np.zeros(window_samples, dtype=np.float32)
        self._position = 0
        self._next_start = 0
        self.windows_emitted = 0
        self.windows_skipped = 0
        self.windows_padded = 0
        self._covered_end = 0  # one past the last sample of the last window cut

    @property
    def position_samples(self) -> int:
        """Absolute index of the next sample expected."""
        return self._position

    @property
    def next_start_sample(self) -> int:
        """Start of the next window to be emitted."""
        return self._next_start

    def push(self, block: np.ndarray, end_capture_time_s: float) -> list[Window]:
        """Append ``block`` to the stream and return the windows it completes.

        Args:
            block: 1-D float32 samples following the previous block (or gap).
            end_capture_time_s: ``time.monotonic()`` time of the block's last sample; window
                capture times are interpolated back from it at ``sample_rate_hz``.
        """
        windows: list[Window] = []
        total = int(block.shape[0])
        block_end = self._position + total
        offset = 0
        while offset < total:
            if self._position < self._next_start:
                step = min(self._next_start - self._position, total - offset)
                offset += step
                self._position += step
                continue
            fill = self._position - self._next_start
            step = min(self.window_samples - fill, total - offset)
            self._buffer[fill : fill + step] = block[offset : offset + step]
            offset += step
            self._position += step
            if self._position - self._next_start == self.window_samples:
                capture_time_s = end_capture_time_s - (block_end - self._position) / self.sample_rate_hz
                windows.append(
                    Window(
                        index=self._next_start // self.hop_samples,
                        start_sample=self._next_start,
                        audio=self._buffer.copy(),
                        sample_rate_hz=self.sample_rate_hz,
                        capture_time_s=capture_time_s,
                    )
                )
                self._covered_end = self._position
                keep = self.window_samples - self.hop_samples
                if keep > 0:
                    self._buffer[:keep] = self._buffer[self.hop_samples :]
                self._next_start += self.hop_samples
        self.windows_emitted += len(windows)
        return windows

    def flush(self, end_capture_time_s: float) -> Window | None:
        """End the stream: the tail window, or ``None`` when every sample pushed since the last
        window's start lies in a window already cut.

        The tail starts at the next grid position and holds the samples pushed since, followed
        by zeros up to ``window_samples`` (:attr:`Window.padded_samples` of them); it is
        counted in :attr:`windows_emitted` and :attr:`windows_padded`. No sample may be pushed
        after it.

        Args:
            end_capture_time_s: ``time.monotonic()`` time of the stream's last sample.
        """
        fill = self._position - self._next_start
        if fill <= 0 or self._position <= self._covered_end:
            return None
        audio = np.zeros(self.window_samples, dtype=np.float32)
        audio[:fill] = self._buffer[:fill]
        window = Window(
            index=self._next_start // self.hop_samples,
            start_sample=self._next_start,
            audio=audio,
            sample_rate_hz=self.sample_rate_hz,
            capture_time_s=end_capture_time_s,
            padded_samples=self.window_samples - fill,
        )
        self._next_start = self._position + self.window_samples  # nothing more is cut
        self.windows_emitted += 1
        self.windows_padded += 1
        return window

    def skip(self, num_samples: int) -> int:
        """Advance the stream over ``num_samples`` missing samples.

        Every window that would have included a missing sample is skipped; the next window
        starts at the first grid position at or after the end of the gap.

        Returns:
            The number of windows skipped by this gap.
        """
        if num_samples <= 0:
            return 0
        self._position += num_samples
        skipped = 0
        if self._position > self._next_start:
            skipped = -(-(self._position - self._next_start) // self.hop_samples)
            self._next_start += skipped * self.hop_samples
        self.windows_skipped += skipped
        return skipped
