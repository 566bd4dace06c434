"""RingBuffer: exact delivery by absolute sample index, and exactly counted overwrites."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtag.ring_buffer import RingBuffer


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 64),
    operations=st.lists(st.tuples(st.integers(0, 100), st.booleans()), max_size=60),
)
def test_every_sample_is_delivered_once_or_counted_lost_once(
    capacity: int, operations: list[tuple[int, bool]]
) -> None:
    ring = RingBuffer(capacity)
    written = 0
    delivered: list[np.ndarray] = []
    starts: list[int] = []
    expected_lost = 0
    cursor = 0
    for block_samples, consume_after in operations:
        ring.write(np.arange(written, written + block_samples, dtype=np.float32))
        written += block_samples
        if consume_after:
            chunk = ring.consume()
            # Everything older than the capacity was overwritten before this read.
            lost_now = max(0, written - capacity - cursor)
            expected_lost += lost_now
            assert chunk.lost_samples == lost_now
            assert chunk.start_sample == cursor + lost_now
            np.testing.assert_array_equal(chunk.audio, np.arange(chunk.start_sample, written, dtype=np.float32))
            delivered.append(chunk.audio)
            starts.append(chunk.start_sample)
            cursor = written
    assert ring.written_samples == written
    assert ring.lost_samples == expected_lost
    got = np.concatenate(delivered) if delivered else np.zeros(0, np.float32)
    assert got.shape[0] + expected_lost == cursor  # nothing duplicated, nothing silently missing
    assert np.unique(got).shape[0] == got.shape[0]


def test_stereo_blocks_are_averaged_to_mono_in_place() -> None:
    ring = RingBuffer(8)
    block = np.array([[1.0, 3.0], [-1.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    ring.write(block)
    np.testing.assert_allclose(ring.consume().audio, [2.0, 0.0, 0.5])


def test_first_channel_view_keeps_only_that_channel() -> None:
    ring = RingBuffer(8)
    block = np.array([[1.0, 3.0], [-1.0, 1.0]], dtype=np.float32)
    ring.write(block[:, :1])
    np.testing.assert_array_equal(ring.consume().audio, [1.0, -1.0])


def test_free_samples_shrink_until_the_consumer_reads() -> None:
    ring = RingBuffer(10)
    ring.write(np.zeros(7, np.float32))
    assert ring.free_samples == 3
    ring.consume(max_samples=5)
    assert ring.free_samples == 8 and ring.consumed_samples == 5


def test_capture_time_is_interpolated_back_from_the_latest_write() -> None:
    ring = RingBuffer(100)
    ring.write(np.zeros(50, np.float32), capture_time_s=10.0)
    chunk = ring.consume()
    assert chunk.capture_time_s(50, 10.0) == pytest.approx(10.0)
    assert chunk.capture_time_s(30, 10.0) == pytest.approx(8.0)


def test_zero_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity_samples"):
        RingBuffer(0)


def test_the_consumer_wakes_when_audio_is_written_and_sleeps_through_nothing() -> None:
    ring = RingBuffer(1000)
    assert ring.wait_for_audio(0.01) is False  # nothing written: the full timeout
    ring.write(np.ones(10, dtype=np.float32))
    assert ring.wait_for_audio(5.0) is True  # written before the wait: at once
    woke_after_s: list[float] = []

    def wait() -> None:
        started = time.monotonic()
        ring.wait_for_audio(5.0)
        woke_after_s.append(time.monotonic() - started)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.05)
    ring.write(np.ones(10, dtype=np.float32))
    waiter.join(5.0)
    assert woke_after_s and woke_after_s[0] < 1.0, "a write wakes the waiting consumer long before its timeout"
    ring.skip(5)
    assert ring.wait_for_audio(5.0) is True  # a device gap wakes it too
