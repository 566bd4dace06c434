"""A preallocated single-producer / single-consumer ring buffer of audio samples.

The producer is the audio callback (or a file replay thread): :meth:`RingBuffer.write` only copies
into preallocated memory, never blocks and never allocates sample arrays. The consumer (the
scheduler thread) takes everything new with :meth:`RingBuffer.consume`.

Samples are indexed by their absolute number since the stream started, so the consumer always
knows the exact stream position of what it reads. When the consumer falls behind by more than
the capacity, the producer overwrites the oldest samples; the consumer notices on its next
:meth:`~RingBuffer.consume` and counts every sample it never received in
:attr:`RingBuffer.lost_samples`. Each sample index is either delivered exactly once or counted as
lost exactly once.

When capture itself stops for a while (an audio device lost and reopened), the producer calls
:meth:`RingBuffer.skip` with the number of samples the gap lasted: the stream position advances by
them as if they had been written, and the consumer counts them as lost, so positions after the
gap stay true to the wall clock.

No lock guards the samples: the producer announces the range it is about to overwrite before
copying, and the consumer checks that announcement after copying (a sequence-lock pattern), so a
read that raced with an overwrite is detected and its damaged head discarded as lost. After each
write the producer sets an event that :meth:`RingBuffer.wait_for_audio` waits on, so the consumer
wakes when audio arrives instead of polling.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Chunk", "RingBuffer"]


@dataclass(frozen=True)
class Chunk:
    """New samples taken from a ring buffer by one :meth:`RingBuffer.consume` call.

    Attributes:
        start_sample: absolute index of ``audio[0]`` since the stream started.
        audio: 1-D float32 copy of the samples (may be empty).
        lost_samples: samples overwritten before this call could read them; they lie just before
            ``start_sample``.
        clock_sample: absolute index one past the last sample of the most recent write.
        clock_time_s: ``time.monotonic()`` reading given with that write (when the sample
            before ``clock_sample`` reached the process).
    """

    start_sample: int
    audio: np.ndarray
    lost_samples: int
    clock_sample: int
    clock_time_s: float

    @property
    def end_sample(self) -> int:
        """Absolute index one past the last sample of this chunk."""
        return self.start_sample + int(self.audio.shape[0])

    def capture_time_s(self, sample: int, sample_rate_hz: float) -> float:
        """Wall-clock (``time.monotonic()``) time at which absolute ``sample`` was captured.

        Derived from the clock anchor of the latest write, assuming samples arrive at
        ``sample_rate_hz``.
        """
        return self.clock_time_s - (self.clock_sample - sample) / sample_rate_hz


class RingBuffer:
    """Fixed-capacity float32 audio buffer indexed by absolute sample number.

    Args:
        capacity_samples: number of samples held (e.g. 10 s at the capture rate). Must be
            positive. Memory is allocated once, here.
    """

    def __init__(self, capacity_samples: int) -> None:
        if capacity_samples <= 0:
            raise ValueError(f"capacity_samples must be positive, not {capacity_samples}")
        self._buffer = np.zeros(capacity_samples, dtype=np.float32)
        self._capacity = capacity_samples
        # Written only by the producer. The head is (samples written, monotonic time of the
        # last one), published as one tuple so the consumer never sees the halves disagree.
        self._head: tuple[int, float] = (0, time.monotonic())
        self._overwrite_until = 0
        # Written only by the consumer.
        self._cursor = 0
        self._lost = 0
        self._new_audio = threading.Event()  # set by the producer after each write or skip

    @property
    def capacity_samples(self) -> int:
        """Number of samples the buffer holds."""
        return self._capacity

    @property
    def written_samples(self) -> int:
        """Samples written since the start; also the absolute index of the next sample."""
        return self._head[0]

    @property
    def consumed_samples(self) -> int:
        """Absolute index of the next sample the consumer will receive."""
        return self._cursor

    @property
    def lost_samples(self) -> int:
        """Samples overwritten before the consumer read them (counted at consume time)."""
        return self._lost

    @property
    def free_samples(self) -> int:
        """Samples that can be written before unread audio would be overwritten."""
        return self._capacity - (self._head[0] - self._cursor)

    def write(self, block: np.ndarray, capture_time_s: float | None = None) -> None:
        """Copy ``block`` into the buffer (producer side; never blocks).

        Args:
            block: float32 samples shaped [frames] or [frames, channels]; several channels are
                averaged to mono in place (pass ``block[:, :1]`` to keep only the first).
            capture_time_s: ``time.monotonic()`` reading for the block's last sample (default:
                now).
        """
        frames = int(block.shape[0])
        if frames == 0:
            return
        if capture_time_s is None:
            capture_time_s = time.monotonic()
        if block.ndim == 1:
            block = block[:, None]
        if frames > self._capacity:
            block = block[frames - self._capacity :]
        written = self._head[0]
        start = written + frames - block.shape[0]
        end = written + frames
        # Announce the overwrite before copying so a concurrent reader can detect the race.
        if end - self._capacity > self._overwrite_until:
            self._overwrite_until = end - self._capacity
        position = start % self._capacity
        first = min(block.shape[0], self._capacity - position)
        self._copy_mono(block[:first], self._buffer[position : position + first])
        if first < block.shape[0]:
            self._copy_mono(block[first:], self._buffer[: block.shape[0] - first])
        self._head = (end, capture_time_s)
        self._new_audio.set()

    def skip(self, frames: int, capture_time_s: float | None = None) -> None:
        """Advance the stream position by ``frames`` samples that were never captured (producer side).

        The consumer counts them in :attr:`lost_samples` and its next chunk starts after them.
        Samples written before the gap that the consumer has not read yet are counted as lost
        too (call this once the consumer has caught up to lose nothing else).

        Args:
            frames: length of the gap in samples (nothing happens for 0 or less).
            capture_time_s: ``time.monotonic()`` reading for the gap's end (default: now).
        """
        if frames <= 0:
            return
        end = self._head[0] + frames
        # The gap's slots hold stale audio: announce them like an overwrite so they are never read.
        self._overwrite_until = max(self._overwrite_until, end)
        self._head = (end, time.monotonic() if capture_time_s is None else capture_time_s)
        self._new_audio.set()

    def wait_for_audio(self, timeout_s: float) -> bool:
        """Wait until the producer writes (or skips) after the previous call, at most
        ``timeout_s`` (consumer side); returns whether it did. A write that came before this call
        and after the previous one returns at once, so no write is slept through."""
        arrived = self._new_audio.wait(timeout_s)
        self._new_audio.clear()
        return arrived

    @staticmethod
    def _copy_mono(block: np.ndarray, out: np.ndarray) -> None:
        """Write the channel average of ``block`` [frames, channels] into ``out`` without allocating."""
        np.copyto(out, block[:, 0], casting="same_kind")
        channels = block.shape[1]
        if channels > 1:
            for channel in range(1, channels):
                np.add(out, block[:, channel], out=out)
            np.multiply(out, np.float32(1.0 / channels), out=out)

    def consume(self, max_samples: int | None = None) -> Chunk:
        """Take the samples written since the last call (consumer side).

        Args:
            max_samples: take at most this many samples (default: all available).

        Returns:
            A :class:`Chunk` with a copy of the new samples; samples overwritten before they
            could be read are skipped and reported in ``Chunk.lost_samples``.
        """
        written, clock_time_s = self._head
        lost = 0
        oldest = written - self._capacity
        if self._cursor < oldest:
            lost += oldest - self._cursor
            self._cursor = oldest
        end = written if max_samples is None else min(written, self._cursor + max_samples)
        audio = self._copy_out(self._cursor, end)
        # Samples the producer began overwriting while we copied are damaged: drop them.
        damaged = min(max(self._overwrite_until - self._cursor, 0), audio.shape[0])
        if damaged:
            lost += damaged
            audio = audio[damaged:]
        start = self._cursor + damaged
        self._cursor = end
        self._lost += lost
        return Chunk(start, audio, lost, written, clock_time_s)

    def _copy_out(self, start: int, end: int) -> np.ndarray:
        count = end - start
        out = np.empty(count, dtype=np.float32)
        if count == 0:
            return out
        position = start % self._capacity
        first = min(count, self._capacity - position)
        out[:first] = self._buffer[position : position + first]
        if first < count:
            out[first:] = self._buffer[: count - first]
        return out
