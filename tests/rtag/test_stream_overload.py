"""Overload held for a while: an engine slower than real time and a slow, raising callback at once.
Capture keeps pace, every loss is counted, and resident memory stays flat."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pytest

from rtag.model import TaggerModel
from rtag.runtime_config import RuntimeConfig
from rtag.sources import ArraySource
from rtag.stream import StreamTagger
from rtag.stream_results import WindowResult
from tests.fixtures.engines import SlowEngine
from rtag.bench import resident_mb

RUN_S = 12.0
RSS_GROWTH_LIMIT_MB = 10.0


class CountingHandler(logging.Handler):
    """Counts log records without keeping them: a kept record's traceback would keep the failed
    callback's window alive and make memory grow in the test, not in the stream."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        self.messages[text] = self.messages.get(text, 0) + 1


@pytest.fixture()
def stream_log() -> Iterator[CountingHandler]:
    """The ``rtag.stream`` log, counted and not passed on."""
    logger = logging.getLogger("rtag.stream")
    handler = CountingHandler()
    logger.addHandler(handler)
    logger.propagate = False
    yield handler
    logger.propagate = True
    logger.removeHandler(handler)


def test_sustained_overload_drops_and_counts_but_never_blocks_capture_or_grows_memory(
    tiny_model: TaggerModel, stream_log: CountingHandler
) -> None:
    # 20 windows a second against an engine that manages about 8 and a callback about 5.
    engine = SlowEngine(tiny_model, delay_s=0.5)
    config = RuntimeConfig(hop_samples=2205, queue_windows=4, results_queue=8, smoothing_windows=1)
    audio = (0.1 * np.random.default_rng(0).standard_normal(int((RUN_S + 5) * 44100))).astype(np.float32)
    delivered: list[int] = []

    def slow_and_raising(result: WindowResult) -> None:
        delivered.append(result.window.index)
        time.sleep(0.2)
        if len(delivered) % 3 == 0:
            raise RuntimeError("callback failed on purpose")

    rss_mb: list[float] = []
    started_s = time.monotonic()
    source = ArraySource(audio, realtime=True)
    with StreamTagger(engine, source, on_window=slow_and_raising, config=config) as stream:
        while time.monotonic() - started_s < RUN_S:
            stream.run_for(1.0)
            rss_mb.append(resident_mb())
        live = stream.stats()
        elapsed_s = time.monotonic() - started_s
    stats = stream.stats()

    # Capture kept the pace of the clock and never waited for the engine or the callbacks.
    assert live.captured_samples > 0.9 * (elapsed_s - 0.2) * 44100
    assert stats.max_capture_write_ms < 20.0 and stats.lost_samples == 0
    # Every window is accounted for: tagged or dropped; every result: delivered or dropped.
    assert stats.windows_dropped > stats.windows_processed > 0
    assert stats.windows_emitted == stats.windows_processed + stats.windows_dropped
    assert stats.results_dropped > 0
    assert len(delivered) + stats.results_dropped == stats.windows_processed
    assert stats.callback_errors == len(delivered) // 3
    assert delivered == sorted(delivered)
    assert sum(n for text, n in stream_log.messages.items() if "callback failed on purpose" in text) == stats.callback_errors
    # Bounded queues: memory does not follow the backlog.
    growth_mb = max(rss_mb[2:]) - rss_mb[2]
    print(f"overload: {stats.windows_emitted} windows cut, {stats.windows_processed} tagged, "
          f"{stats.windows_dropped} dropped, {stats.results_dropped} results dropped, "
          f"{stats.callback_errors} callback errors; RSS each second (MB): {[round(mb, 1) for mb in rss_mb]}")
    assert growth_mb < RSS_GROWTH_LIMIT_MB
