"""Device faults on a real audio device: the sound server killed mid-stream and brought back, an
unsupported rate. The loss is reported, retried with backoff, and the gap kept in stream time."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from rtag.model import TaggerModel
from rtag.ring_buffer import RingBuffer
from rtag.runtime_config import RuntimeConfig
from rtag.sources import DeviceError, DeviceEvent, MicSource
from rtag.stream import StreamTagger
from rtag.stream_results import WindowResult
from tests.fixtures.virtual_mic import VirtualMic

pytestmark = pytest.mark.device


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _clock_offset_s(result: WindowResult, rate_hz: int) -> float:
    """Wall-clock time minus stream time at the window's end: constant while stream time is true."""
    return result.window.capture_time_s - result.window.end_sample / rate_hz


def test_sound_server_killed_mid_stream_is_reported_retried_and_the_gap_kept_in_stream_time(
    virtual_mic: VirtualMic, tiny_model: TaggerModel
) -> None:
    rate_hz = tiny_model.sample_rate_hz
    events: list[DeviceEvent] = []
    results: list[WindowResult] = []
    source = MicSource(virtual_mic.capture_device, block_samples=512, retry_initial_s=0.05, retry_max_s=0.4)
    with StreamTagger(tiny_model, source, on_window=results.append, on_device_event=events.append,
                      config=RuntimeConfig(smoothing_windows=1)) as stream:
        stream.run_for(1.0)
        assert stream.stats().device_connected and not events
        windows_before = len(results)
        killed_s = time.monotonic()
        virtual_mic.kill()
        assert _wait_for(lambda: any(e.kind == "lost" for e in events), 2.0), events
        detected_s = time.monotonic()
        status_while_away = stream.stats()
        time.sleep(1.2)  # away long enough for several failed attempts
        restart_s = time.monotonic()
        virtual_mic.start()
        assert _wait_for(lambda: any(e.kind == "restored" for e in events), 10.0), events
        stream.run_for(1.5)
        live = stream.stats()
    stats = stream.stats()

    # Reported to the caller, in order, and visible in the counters while it lasted.
    kinds = [e.kind for e in events]
    assert kinds[0] == "lost" and kinds[-1] == "restored" and set(kinds[1:-1]) == {"retry_failed"}, kinds
    assert detected_s - killed_s < 1.0
    assert not status_while_away.device_connected and status_while_away.device_losses == 1
    # Retried with a doubling backoff up to the cap.
    failures = [e for e in events if e.kind == "retry_failed"]
    assert len(failures) >= 3
    assert [e.attempt for e in failures] == list(range(1, len(failures) + 1))
    assert [e.retry_in_s for e in failures][:4] == pytest.approx([0.1, 0.2, 0.4, 0.4][: len(failures)])
    assert all(e.device == virtual_mic.capture_device for e in events)

    # The gap: the wall time the device was away, counted as lost samples.
    restored = events[-1]
    gap_s = restored.gap_samples / source.sample_rate_hz
    assert restart_s - killed_s - 0.1 < gap_s < restored.time_s - killed_s + 0.1, (gap_s, restart_s - killed_s)
    assert live.device_connected and not stats.device_connected  # capturing again; then stopped
    assert stats.device_losses == 1
    assert stats.device_gap_samples == restored.gap_samples == stats.lost_samples
    assert stats.windows_skipped > 0 and stats.windows_dropped == 0

    # Tagging resumed, on the same hop grid, and stream time after the gap is still wall time.
    after = [r for r in results if r.window.start_sample >= restored.sample]
    assert len(after) >= 3 and len(results) > windows_before
    assert all(r.window.start_sample % tiny_model.hop_samples == 0 for r in results)
    assert [r.window.index for r in results] == sorted(r.window.index for r in results)
    before_offset = np.median([_clock_offset_s(r, rate_hz) for r in results[:windows_before]])
    after_offset = np.median([_clock_offset_s(r, rate_hz) for r in after])
    assert abs(after_offset - before_offset) < 0.1, (before_offset, after_offset)


def test_without_reconnect_a_lost_device_ends_the_stream_with_its_name(
    virtual_mic: VirtualMic, tiny_model: TaggerModel
) -> None:
    source = MicSource(virtual_mic.capture_device, reconnect=False)
    stream = StreamTagger(tiny_model, source).start()
    try:
        stream.run_for(0.5)
        virtual_mic.kill()
        with pytest.raises(DeviceError, match=rf"'{virtual_mic.capture_device}' was lost"):
            stream.run_for(5.0)
    finally:
        virtual_mic.start()
        stream._shutdown(abort=True)
    assert stream.stats().device_losses == 1


def test_unsupported_sample_rate_names_the_device_and_the_rates_it_takes(virtual_mic: VirtualMic) -> None:
    source = MicSource(virtual_mic.capture_device, sample_rate_hz=1_000_000)
    with pytest.raises(DeviceError) as error:
        source.start(RingBuffer(1024))
    message = str(error.value)
    assert f"'{virtual_mic.capture_device}' at 1000000 Hz" in message
    assert "native rate 44100 Hz" in message and "44100, 48000" in message
    assert source.finished
