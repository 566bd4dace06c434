"""WindowScheduler: windows exactly every hop, holding exactly the stream's samples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtag.ring_buffer import RingBuffer
from rtag.scheduler import WindowScheduler


def split(total: int, sizes: list[int]) -> list[tuple[int, int]]:
    """Cut range(total) into consecutive blocks of the given sizes (cycled; zeros allowed)."""
    bounds, start, i = [], 0, 0
    while start < total:
        size = sizes[i % len(sizes)]
        bounds.append((start, min(total, start + size)))
        start += size
        i += 1
    return bounds


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 40),
    hop=st.integers(1, 50),
    total=st.integers(0, 400),
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=12).filter(any),
)
def test_windows_start_every_hop_and_hold_exactly_the_stream(
    window: int, hop: int, total: int, sizes: list[int]
) -> None:
    stream = np.arange(total, dtype=np.float32)
    scheduler = WindowScheduler(window, hop, sample_rate_hz=100)
    windows = []
    for start, end in split(total, sizes):
        windows += scheduler.push(stream[start:end], end_capture_time_s=end / 100)
    expected_count = 0 if total < window else (total - window) // hop + 1
    assert [w.start_sample for w in windows] == [i * hop for i in range(expected_count)]
    assert [w.index for w in windows] == list(range(expected_count))
    for w in windows:
        np.testing.assert_array_equal(w.audio, stream[w.start_sample : w.end_sample])
        assert w.capture_time_s == pytest.approx(w.end_sample / 100)
    assert scheduler.windows_emitted == expected_count
    assert scheduler.position_samples == total


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(8, 80),
    operations=st.lists(st.tuples(st.integers(0, 50), st.booleans()), min_size=1, max_size=40),
    window=st.integers(1, 20),
    hop=st.integers(1, 20),
)
def test_ring_overflow_skips_exactly_the_windows_that_touch_lost_samples(
    capacity: int, operations: list[tuple[int, bool]], window: int, hop: int
) -> None:
    ring = RingBuffer(capacity)
    scheduler = WindowScheduler(window, hop, sample_rate_hz=1)
    lost = np.zeros(0, dtype=bool)
    written = 0
    windows = []

    def drain() -> None:
        nonlocal lost
        chunk = ring.consume()
        lost = np.concatenate([lost, np.ones(chunk.lost_samples, bool), np.zeros(chunk.audio.shape[0], bool)])
        scheduler.skip(chunk.lost_samples)
        windows.extend(scheduler.push(chunk.audio, end_capture_time_s=0.0))

    for block_samples, consume_after in operations:
        ring.write(np.arange(written, written + block_samples, dtype=np.float32))
        written += block_samples
        if consume_after:
            drain()
    drain()
    assert ring.lost_samples == int(lost.sum())
    # A window exists for every grid start whose samples all arrived, and for no other.
    complete = [
        s for s in range(0, written - window + 1, hop) if not lost[s : s + window].any()
    ]
    assert [w.start_sample for w in windows] == complete
    for w in windows:
        np.testing.assert_array_equal(w.audio, np.arange(w.start_sample, w.end_sample, dtype=np.float32))
    all_starts = len(range(0, written - window + 1, hop)) if written >= window else 0
    assert scheduler.windows_emitted + scheduler.windows_skipped >= all_starts


def test_nonpositive_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="hop_samples"):
        WindowScheduler(10, 0)


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(2, 300),
    hop_share=st.floats(0.1, 1.0),
    total=st.integers(1, 2000),
    block=st.integers(1, 500),
)
def test_flush_cuts_one_padded_tail_exactly_when_samples_are_left_untagged(
    window: int, hop_share: float, total: int, block: int
) -> None:
    hop = max(1, int(window * hop_share))
    stream = np.arange(1, total + 1, dtype=np.float32)
    scheduler = WindowScheduler(window, hop)
    windows = [w for start in range(0, total, block) for w in scheduler.push(stream[start : start + block], 0.0)]
    covered = windows[-1].end_sample if windows else 0
    tail = scheduler.flush(1.0)
    if covered == total:
        assert tail is None and scheduler.windows_padded == 0
        return
    assert tail is not None and scheduler.windows_padded == 1 and scheduler.windows_emitted == len(windows) + 1
    assert tail.start_sample == len(windows) * hop and tail.index == len(windows)  # on the grid
    assert tail.end_sample == total and tail.padded_samples == window - (total - tail.start_sample)
    np.testing.assert_array_equal(tail.audio[: window - tail.padded_samples], stream[tail.start_sample :])
    assert not tail.audio[window - tail.padded_samples :].any() and tail.num_samples == window
    assert scheduler.flush(2.0) is None  # a stream ends once
