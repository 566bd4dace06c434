"""Settings of the streaming runtime, loaded from YAML (``configs/runtime/default.yaml``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtag.config import ConfigError, apply_overrides, from_dict, load_yaml
from rtag.engines import AUTO, ENGINE_KINDS, check_engine
from rtag.smoother import ONSET_SCHEMES

__all__ = ["RUNTIME_RANGES", "SILENCE_THRESHOLD_RANGE_DBFS", "RuntimeConfig", "load_runtime_config"]

SILENCE_THRESHOLD_RANGE_DBFS = (-120.0, 0.0)  # the level floor (digital silence) to full scale

RUNTIME_RANGES: dict[str, tuple[float, float]] = {
    "window_samples": (1, 44100 * 60),
    "hop_samples": (1, 44100 * 60),
    "ring_buffer_s": (0.01, 600.0),
    "capture_block_samples": (1, 65536),
    "queue_windows": (1, 1024),
    "results_queue": (1, 100_000),
    "smoothing_windows": (1, 100),
    "poll_interval_ms": (0.1, 1000.0),
    "device_retry_initial_s": (0.001, 60.0),
    "device_retry_max_s": (0.001, 600.0),
    "device_stall_timeout_s": (0.05, 60.0),
}
"""Allowed [low, high] of each numeric runtime key (NaN and infinities are outside every range)."""


@dataclass(frozen=True)
class RuntimeConfig:
    """How the streaming runtime cuts, queues, smooths and reports.

    Attributes:
        window_samples: model input length in samples; ``None`` (default) takes the model's
            (88200 for the 2 s model). Only override it for a network that accepts other lengths.
        hop_samples: distance between window starts in samples; ``None`` (default) takes the
            model bundle's hop (51200 for the 2 s model).
        ring_buffer_s: capacity of the capture ring buffer in seconds (default 10). If the
            scheduler thread stalls for longer, the oldest audio is overwritten and counted.
        capture_block_samples: frames per audio-device callback or replay block, at the
            source's own rate (default 200: at 44.1 kHz it divides both the 88200-sample window
            and the 51200-sample hop, so every window ends on a block's last sample and is cut
            the moment its block arrives; a 1024-frame block made every window wait 20 ms for
            the rest of its block).
        queue_windows: most windows waiting for the engine (default 4). When the engine is
            slower than real time the oldest waiting window is dropped and counted; the worker
            takes everything queued as one batch.
        results_queue: most results waiting for the callbacks (default 64); beyond that the
            oldest is dropped and counted, so a slow callback never stalls the engine.
        smoothing_windows: K, the number of most recent window probabilities whose geometric
            mean drives events (default 3; 1 disables smoothing).
        on_threshold: smoothed probability at or above which a tag starts (default 0.5).
        off_threshold: smoothed probability below which an active tag ends (default 0.3);
            must not exceed ``on_threshold`` (hysteresis).
        onset: what the thresholds are compared with: ``"window"`` (default: per label the
            larger of the window's own and the smoothed probability, so a sound starts on the
            first window that hears it and the smoothing only holds a tag through a weak
            window) or ``"smoothed"`` (the geometric mean alone: about K - 1 hops later, and
            sounds shorter than K windows are missed); see :mod:`rtag.smoother` and
            ``benchmarks/event_onsets.py``.
        poll_interval_ms: the scheduler wakes as soon as a block is written; this is the
            longest it sleeps when none comes, to notice a stop or the end of a replay
            (default 20 ms).
        device_retry_initial_s: first wait before reopening a lost input device (default 0.1 s).
        device_retry_max_s: longest wait between reopening attempts; waits double up to it
            (default 2 s). A lost device is retried until it returns or the stream stops.
        device_stall_timeout_s: an input device that delivers no audio for this long is
            treated as lost (default 1 s).
        engine: inference back end: ``"auto"`` (default: the fastest that runs here, a CUDA
            engine on a usable GPU, else int8 ONNX Runtime when the bundle has its int8 graph,
            else ONNX Runtime fp32, else torch), ``"torch"`` or ``"onnx"`` (ONNX Runtime, CUDA
            when it can load, else CPU); see :func:`rtag.engines.create_engine`.
        precision: ``"auto"`` (default: the engine's choice), ``"fp32"``, ``"bf16"`` (torch) or
            ``"int8"`` (onnx, from the int8 graph beside the bundle).
        silence_threshold_dbfs: a window whose level (the RMS of its loudest 2048-sample frame,
            :func:`rtag.level.window_level_dbfs`) is below this is silent: it is not sent to the
            engine, no tag starts on it and active tags end (default -55 dBFS, chosen by
            ``benchmarks/silence_level.py``; within [-120, 0]; ``None`` disables the gate).
        report_other: raise start/end events for the ``_other`` label, the model's class for
            sounds outside its classes (default ``False``: it is shown, but raises no events).
    """

    window_samples: int | None = None
    hop_samples: int | None = None
    ring_buffer_s: float = 10.0
    capture_block_samples: int = 200
    queue_windows: int = 4
    results_queue: int = 64
    smoothing_windows: int = 3
    on_threshold: float = 0.5
    off_threshold: float = 0.3
    onset: str = "window"
    poll_interval_ms: float = 20.0
    device_retry_initial_s: float = 0.1
    device_retry_max_s: float = 2.0
    device_stall_timeout_s: float = 1.0
    engine: str = AUTO
    precision: str = AUTO
    silence_threshold_dbfs: float | None = -55.0
    report_other: bool = False

    def __post_init__(self) -> None:
        if self.onset not in ONSET_SCHEMES:
            raise ConfigError(f"runtime.onset must be one of {', '.join(ONSET_SCHEMES)}, not {self.onset!r}")
        if self.engine not in ENGINE_KINDS:
            raise ConfigError(f"runtime.engine must be one of {', '.join(ENGINE_KINDS)}, not {self.engine!r}")
        try:
            check_engine(self.engine, self.precision)
        except ValueError as exc:
            raise ConfigError(f"runtime.precision: {exc}") from None
        for name, (low, high) in RUNTIME_RANGES.items():
            value = getattr(self, name)
            if value is None and name in ("window_samples", "hop_samples"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ConfigError(f"runtime.{name} must be within [{low:g}, {high:g}], not {value!r}")
        if self.window_samples is not None and self.hop_samples is not None and self.hop_samples > self.window_samples:
            raise ConfigError(
                f"runtime.hop_samples ({self.hop_samples}) must not exceed window_samples ({self.window_samples}): "
                "audio between windows would never be tagged"
            )
        if self.device_retry_initial_s > self.device_retry_max_s:
            raise ConfigError(
                f"runtime.device_retry_initial_s ({self.device_retry_initial_s}) must not exceed "
                f"device_retry_max_s ({self.device_retry_max_s})"
            )
        if self.silence_threshold_dbfs is not None and not (
            SILENCE_THRESHOLD_RANGE_DBFS[0] <= self.silence_threshold_dbfs <= SILENCE_THRESHOLD_RANGE_DBFS[1]
        ):
            raise ConfigError(
                f"runtime.silence_threshold_dbfs must be within {list(SILENCE_THRESHOLD_RANGE_DBFS)} dBFS "
                f"(or null to disable the silence gate), not {self.silence_threshold_dbfs}"
            )
        if not 0.0 <= self.off_threshold <= self.on_threshold <= 1.0:
            raise ConfigError(
                "runtime thresholds need 0 <= off_threshold <= on_threshold <= 1, "
                f"not off={self.off_threshold}, on={self.on_threshold}"
            )


def load_runtime_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RuntimeConfig:
    """Load a :class:`RuntimeConfig` from ``path`` (default: all defaults) with ``key=value`` overrides.

    Raises:
        ConfigError: naming the file and key for a missing file, unknown key or bad value.
    """
    if path is None:
        return from_dict(RuntimeConfig, apply_overrides({}, overrides, "<runtime overrides>"), "<runtime overrides>")
    return load_yaml(path, RuntimeConfig, overrides)
