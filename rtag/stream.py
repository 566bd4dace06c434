"""The streaming tagger: source -> ring buffer -> scheduler -> worker -> smoother -> sinks.

:class:`StreamTagger` wires the stages together and owns their threads:

- the source writes into the ring buffer (PortAudio's callback thread, or a replay thread);
- the scheduler thread takes new samples from the ring buffer, resamples them to the model rate
  (soxr streaming resampler) and cuts windows;
- the worker thread gates silent windows, batches the others through the engine, smooths, and
  detects events;
- the dispatcher thread runs the callbacks and sinks.

See docs/streaming.md for the data flow, the counters and the latency definition.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import soxr

from rtag.config import ConfigError
from rtag.engines import Engine, as_engine
from rtag.ring_buffer import Chunk, RingBuffer
from rtag.runtime_config import RuntimeConfig, load_runtime_config
from rtag.scheduler import WindowScheduler
from rtag.sinks import CallbackDispatcher, CallbackSink
from rtag.smoother import EventTracker, TagEvent
from rtag.sources import ArraySource, DeviceEvent, MicSource, Source
from rtag.stream_results import StreamStats, WindowResult
from rtag.worker import InferenceWorker

__all__ = ["StreamTagger"]


class _ModelRateConverter:
    """Streaming conversion of source-rate chunks to model-rate samples (soxr, or a pass-through)."""

    def __init__(self, source_rate_hz: int, model_rate_hz: int) -> None:
        self.source_rate_hz = source_rate_hz
        self.model_rate_hz = model_rate_hz
        self._resampler = (
            None
            if source_rate_hz == model_rate_hz
            else soxr.ResampleStream(source_rate_hz, model_rate_hz, 1, dtype="float32", quality="HQ")
        )

    def to_model_samples(self, source_samples: int) -> int:
        """Model-rate position of a source-rate position."""
        return round(source_samples * self.model_rate_hz / self.source_rate_hz)

    def to_source_samples(self, model_samples: int) -> float:
        """Source-rate position of a model-rate position."""
        return model_samples * self.source_rate_hz / self.model_rate_hz

    def convert(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next chunk; ``last`` flushes the resampler's delay line."""
        if self._resampler is None:
            return audio
        return self._resampler.resample_chunk(audio, last=last)

    def restart(self) -> None:
        """Forget the past (after a gap): the next chunk is resampled as a fresh start."""
        if self._resampler is not None:
            self._resampler.clear()


class StreamTagger:
    """Tag a live audio stream, window by window, with events when tags start and end.

    Use it as a context manager::

        with rtag.StreamTagger(model, on_event=print) as stream:
            stream.run_for(60.0)

    Args:
        model: a :class:`~rtag.model.TaggerModel`, run by the config's ``engine`` and
            ``precision`` (default ``auto``: the fastest engine that runs here), or any
            :class:`~rtag.engines.Engine`; its labels, rate, window and hop are used.
        source: where audio comes from: a :class:`~rtag.sources.Source` (``MicSource``,
            ``FileSource``, ``ArraySource``), a 1-D numpy array (replayed as fast as possible;
            its rate is ``sample_rate_hz``), or ``None`` (default) for the microphone given by
            ``device``.
        device: input device index or name substring when ``source`` is ``None`` (default: the
            system's default input).
        on_event: called with every :class:`~rtag.smoother.TagEvent` (default none); tags start
            and end on sound only (silence ends them), and ``_other`` raises none unless the
            config's ``report_other`` is set.
        on_window: called with every :class:`~rtag.stream_results.WindowResult` (default none),
            silent windows included (``result.silent``).
        on_device_event: called with every :class:`~rtag.sources.DeviceEvent` (input device
            lost, reopening failed, restored; default none). Device events are never dropped.
        config: a :class:`~rtag.runtime_config.RuntimeConfig` or the path of its YAML file
            (default: all defaults, see configs/runtime/default.yaml).
        sinks: further sinks (e.g. :class:`~rtag.monitor.ConsoleMonitor`,
            :class:`~rtag.sinks.JsonLinesWriter`), called after the callbacks.
        sample_rate_hz: the rate of an array ``source`` (default: the model's, 44100); another
            rate is resampled to the model's as the stream runs.

    Raises:
        DeviceError, NoInputDeviceError: for an unknown device or a system without input.
        ConfigError: for an invalid runtime config (names the file and key).
        ValueError: if both ``source`` and ``device`` are given, or ``sample_rate_hz`` with a
            source that is not an array (a source knows its own rate).
    """

    def __init__(
        self,
        model: Any,
        source: Source | np.ndarray | None = None,
        *,
        device: int | str | None = None,
        on_event: Callable[[TagEvent], Any] | None = None,
        on_window: Callable[[WindowResult], Any] | None = None,
        on_device_event: Callable[[DeviceEvent], Any] | None = None,
        config: RuntimeConfig | str | Path | None = None,
        sinks: Sequence[object] = (),
        sample_rate_hz: int | None = None,
    ) -> None:
        self.config = config if isinstance(config, RuntimeConfig) else load_runtime_config(config)
        self.engine: Engine = as_engine(model, self.config.engine, self.config.precision)
        self.sample_rate_hz = int(self.engine.sample_rate_hz)
        self.window_samples = self.config.window_samples or int(self.engine.window_samples)
        self.hop_samples = self.config.hop_samples or int(self.engine.hop_samples)
        if self.hop_samples > self.window_samples:
            raise ConfigError(
                f"runtime.hop_samples ({self.hop_samples}) must not exceed the window ({self.window_samples} "
                "samples): audio between windows would never be tagged"
            )
        block_samples = self.config.capture_block_samples
        if source is not None and device is not None:
            raise ValueError("give a source or a device, not both")
        if sample_rate_hz is not None and not isinstance(source, np.ndarray):
            raise ValueError("sample_rate_hz is the rate of an array source; other sources know their own rate")
        if source is None:
            source = MicSource(
                device,
                block_samples=block_samples,
                retry_initial_s=self.config.device_retry_initial_s,
                retry_max_s=self.config.device_retry_max_s,
                stall_timeout_s=self.config.device_stall_timeout_s,
            )
        elif isinstance(source, np.ndarray):
            source = ArraySource(source, sample_rate_hz or self.sample_rate_hz, block_samples=block_samples)
        self.source: Source = source
        self.ring = RingBuffer(math.ceil(self.config.ring_buffer_s * source.sample_rate_hz))
        self.scheduler = WindowScheduler(self.window_samples, self.hop_samples, self.sample_rate_hz)
        self._converter = _ModelRateConverter(source.sample_rate_hz, self.sample_rate_hz)
        lossless = not source.realtime
        sink_list: list[object] = []
        if on_window is not None or on_event is not None or on_device_event is not None:
            sink_list.append(CallbackSink(on_window=on_window, on_event=on_event, on_device_event=on_device_event))
        sink_list.extend(sinks)
        self._dispatcher = CallbackDispatcher(
            sink_list, results_queue=self.config.results_queue, lossless=lossless
        )
        source.on_device_event = self._dispatcher.put_device_event
        self._worker = InferenceWorker(
            self.engine,
            EventTracker(self.engine.labels, self.config),
            self._dispatcher.put,
            self.stats,
            queue_windows=self.config.queue_windows,
            lossless=lossless,
            silence_threshold_dbfs=self.config.silence_threshold_dbfs,
        )
        self._stop_requested = threading.Event()
        self._pump = threading.Thread(target=self._run_scheduler, name="rtag-scheduler", daemon=True)
        self._pump_error: BaseException | None = None
        self._started = False
        self._stopped = False
        self._last_push_time_s = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> StreamTagger:
        """Start the threads and the source; returns ``self``.

        Raises:
            DeviceError: if the audio device cannot be opened.
        """
        if self._started:
            raise RuntimeError("this StreamTagger was already started; create a new one")
        self._started = True
        self._dispatcher.start()
        self._worker.start()
        self._pump.start()
        try:
            self.source.start(self.ring)
        except BaseException:
            self._stop_requested.set()
            self._shutdown(abort=True)
            raise
        return self

    def __enter__(self) -> StreamTagger:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop()
        else:  # do not hide the exception that is already on its way
            self._shutdown(abort=False)

    @property
    def finished(self) -> bool:
        """True once the source has ended and every window has been processed (callbacks may
        still be running; :meth:`stop` waits for them)."""
        return self._worker.done

    def run_for(self, seconds: float | None = None) -> StreamStats:
        """Let the stream run for ``seconds`` of wall-clock time, or until the source ends.

        Args:
            seconds: how long to run; ``None`` (default) waits until the source ends (a file or
                array replay) and all its windows are processed.

        Returns:
            The counters at return.

        Raises:
            Exception: the error that stopped a pipeline stage (device lost, engine failure).
        """
        if not self._started:
            self.start()
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.finished:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self._worker.join(0.05 if remaining is None else min(0.05, remaining))
            self._raise_pipeline_error()
        self._raise_pipeline_error()
        return self.stats()

    def stop(self) -> StreamStats:
        """Stop capturing, process what was captured, end active tags, close the sinks.

        A real-time source's captured audio is cut into windows and tagged (the ring buffer
        holds only what arrived since the last poll); a lossless replay (``realtime=False``)
        stops at once: the windows already queued are tagged, the audio it read ahead is not.

        Returns:
            The final counters.

        Raises:
            Exception: the error that stopped a pipeline stage, if any.
        """
        self._shutdown(abort=False)
        self._raise_pipeline_error()
        return self.stats()

    def _shutdown(self, abort: bool) -> None:
        if self._stopped or not self._started:
            return
        self._stopped = True
        self._stop_requested.set()
        self.source.stop()
        if self._pump.ident is not None:
            self._pump.join()
        self._worker.close(abort=abort)
        self._worker.join()
        self._dispatcher.close()

    def _raise_pipeline_error(self) -> None:
        for error in (self.source.error, self._pump_error, self._worker.error):
            if error is not None:
                raise error

    # -- scheduler thread --------------------------------------------------------------------

    def _run_scheduler(self) -> None:
        poll_s = self.config.poll_interval_ms / 1000.0
        # A lossless replay keeps the ring full: take about a hop at a time, so that stop() is
        # noticed between windows rather than after ring_buffer_s of them.
        take_samples = None if self.source.realtime else max(1, math.ceil(self._converter.to_source_samples(self.hop_samples)))
        try:
            while True:
                if self._stop_requested.is_set() and not self.source.realtime:
                    break  # stop() ends a lossless replay at once; its read-ahead is not tagged
                source_done = self.source.finished or self._stop_requested.is_set()
                chunk = self.ring.consume(take_samples)
                last = source_done and self.ring.consumed_samples >= self.ring.written_samples
                self._schedule(chunk, last=last)
                if last:
                    if self.source.finished and not self._stop_requested.is_set():
                        tail = self.scheduler.flush(self._last_push_time_s)
                        if tail is not None:
                            self._worker.submit(tail)
                    break
                if chunk.audio.shape[0] == 0:
                    self.ring.wait_for_audio(poll_s)
        except BaseException as exc:
            self._pump_error = exc
        finally:
            self._worker.close()

    def _schedule(self, chunk: Chunk, last: bool) -> None:
        if chunk.lost_samples:
            # Flush what the resampler still holds from before the gap, then start afresh after it.
            self._push(self._converter.convert(np.zeros(0, np.float32), last=True), chunk)
            self._converter.restart()
            gap_end = self._converter.to_model_samples(chunk.start_sample)
            self.scheduler.skip(gap_end - self.scheduler.position_samples)
        self._push(self._converter.convert(chunk.audio, last=last), chunk)

    def _push(self, audio: np.ndarray, chunk: Chunk) -> None:
        end = self.scheduler.position_samples + audio.shape[0]
        end_time_s = chunk.capture_time_s(self._converter.to_source_samples(end), self.source.sample_rate_hz)
        self._last_push_time_s = end_time_s
        for window in self.scheduler.push(audio, end_time_s):
            self._worker.submit(window)

    # -- counters ----------------------------------------------------------------------------

    def stats(self) -> StreamStats:
        """A snapshot of the stream's counters (see :class:`~rtag.stream_results.StreamStats`)."""
        latencies = np.array(list(self._worker.latencies_ms), dtype=np.float64)
        has_latency = latencies.size > 0
        captured = self.ring.written_samples
        captured_model = self._converter.to_model_samples(captured)
        return StreamStats(
            sample_rate_hz=self.sample_rate_hz,
            capture_rate_hz=self.source.sample_rate_hz,
            captured_samples=captured,
            lost_samples=self.ring.lost_samples,
            input_overflows=self.source.input_overflows,
            windows_emitted=self.scheduler.windows_emitted,
            windows_skipped=self.scheduler.windows_skipped,
            windows_padded=self.scheduler.windows_padded,
            windows_dropped=self._worker.windows_dropped,
            windows_processed=self._worker.windows_processed,
            results_dropped=self._dispatcher.results_dropped,
            callback_errors=self._dispatcher.callback_errors,
            latency_ms_last=float(latencies[-1]) if has_latency else 0.0,
            latency_ms_p50=float(np.percentile(latencies, 50)) if has_latency else 0.0,
            latency_ms_p99=float(np.percentile(latencies, 99)) if has_latency else 0.0,
            lag_s=max(0, captured_model - self._worker.last_end_sample) / self.sample_rate_hz,
            max_capture_write_ms=self.source.max_write_ms,
            # Sources written before device faults were reported may lack these attributes.
            device_connected=getattr(self.source, "connected", True),
            device_losses=getattr(self.source, "device_losses", 0),
            device_gap_samples=getattr(self.source, "gap_samples", 0),
            windows_silent=self._worker.windows_silent,
            realtime=bool(getattr(self.source, "realtime", True)),
        )
