"""Speed and resource figures of the engines, measured side by side (``rtag bench``).

For each engine: offline throughput (seconds of compute per minute of audio, windows cut every
``hop_samples`` as the technical report's efficient mode does), the streaming latency from a
window's last captured sample to its callback (p50/p99), and the process's CPU and memory while
streaming at real-time pace. The machine's matrix-multiply peak is measured too, so each engine's
arithmetic rate can be read as a fraction of what the hardware does on the easiest possible work.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rtag.config import to_dict
from rtag.engines import Engine, create_engine
from rtag.model import TaggerModel
from rtag.runtime_config import RuntimeConfig

__all__ = [
    "matmul_peak_gflops",
    "resident_mb",
    "measure_streaming",
    "measure_throughput",
    "run_bench",
    "window_flops",
]


def matmul_peak_gflops(
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    size: int = 2048,
    seconds: float = 1.0,
) -> float:
    """Sustained GFLOP/s of a square ``size`` matrix multiply in ``dtype`` on ``device``.

    On the CPU this uses torch's intra-op threads (``torch.get_num_threads()``).
    """
    device = torch.device(device)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)  # warm-up: thread pool, kernels
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    repeats = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, b)
        repeats += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return 2.0 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def window_flops(network: nn.Module, window_samples: int) -> int:
    """Floating-point operations (2 per multiply-add) of the convolutions and dense layers for one window.

    The log-mel front end, pooling, BatchNorm and activations are left out: they are a few percent
    of the total for the papers' networks.
    """
    total = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            per_output = module.weight[0].numel()  # in_channels / groups * kernel elements
            total += 2 * per_output * output.numel()
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features * (output.numel() // module.out_features)

    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    try:
        device = next(network.parameters()).device
        with torch.inference_mode():
            network(torch.zeros(1, window_samples, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def resident_mb() -> float | None:
    """Resident memory of this process in MB (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return None


def measure_throughput(engine: Engine, audio_s: float = 60.0, hop_samples: int | None = None, batch_size: int = 8) -> dict[str, float]:
    """Offline speed on ``audio_s`` seconds of noise cut into windows every ``hop_samples``.

    Args:
        engine: the engine to time (one warm-up batch is run first, outside the timing).
        audio_s: length of the audio (default 60 s: the figure is then seconds per audio minute).
        hop_samples: step between windows (default: the engine's hop, 51200 for the 2 s model).
        batch_size: windows per ``predict`` call (default 8).

    Returns:
        ``windows``, ``seconds``, ``ms_per_window`` and ``s_per_audio_minute``.
    """
    hop = hop_samples or engine.hop_samples
    total_samples = int(audio_s * engine.sample_rate_hz)
    audio = (0.1 * np.random.default_rng(0).standard_normal(total_samples)).astype(np.float32)
    starts = list(range(0, max(1, total_samples - engine.window_samples + 1), hop))
    engine.predict(np.stack([audio[s : s + engine.window_samples] for s in starts[:batch_size]]))
    started = time.perf_counter()
    for first in range(0, len(starts), batch_size):
        batch = np.stack([audio[s : s + engine.window_samples] for s in starts[first : first + batch_size]])
        engine.predict(batch)
    seconds = time.perf_counter() - started
    return {
        "windows": len(starts),
        "seconds": seconds,
        "ms_per_window": 1000.0 * seconds / len(starts),
        "s_per_audio_minute": seconds * 60.0 / audio_s,
    }


def measure_streaming(
    engine: Engine, seconds: float = 20.0, audio: np.ndarray | None = None, config: RuntimeConfig | None = None
) -> dict[str, float | int | None]:
    """Listen to ``audio`` (default: noise) replayed at real-time pace for ``seconds``; time every window.

    Latency runs from the capture of a window's last sample to its ``on_window`` callback. CPU is
    this process's user + system time over the wall time (100 = one core busy); memory is the
    resident set at the start and the end.
    """
    from rtag.sources import ArraySource
    from rtag.stream import StreamTagger

    if audio is None:
        noise = np.random.default_rng(1).standard_normal(int((seconds + 3) * engine.sample_rate_hz))
        audio = (0.1 * noise).astype(np.float32)
    latencies_ms: list[float] = []

    def on_window(result: Any) -> None:
        latencies_ms.append((time.monotonic() - result.window.capture_time_s) * 1000.0)

    block_samples = (config or RuntimeConfig()).capture_block_samples
    source = ArraySource(audio, sample_rate_hz=engine.sample_rate_hz, realtime=True, block_samples=block_samples)
    rss_start = resident_mb()
    cpu_start, wall_start = _cpu_seconds(), time.monotonic()
    with StreamTagger(engine, source, on_window=on_window, config=config) as stream:
        stream.run_for(seconds)
        cpu_used, wall = _cpu_seconds() - cpu_start, time.monotonic() - wall_start
    stats = stream.stats()
    latencies = np.asarray(latencies_ms)
    return {
        "stream_windows": int(latencies.size),
        "stream_windows_dropped": stats.windows_dropped,
        "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies.size else None,
        "latency_ms_p99": float(np.percentile(latencies, 99)) if latencies.size else None,
        "latency_ms_max": float(latencies.max()) if latencies.size else None,
        "cpu_percent_of_one_core": 100.0 * cpu_used / wall,
        "rss_mb_start": rss_start,
        "rss_mb_end": resident_mb(),
    }


def run_bench(
    model: TaggerModel,
    engines: Sequence[tuple[str, str]] = (("torch", "fp32"), ("onnx", "fp32")),
    audio_s: float = 60.0,
    stream_s: float = 20.0,
    batch_size: int = 8,
    runtime: RuntimeConfig | None = None,
) -> dict[str, Any]:
    """All figures for ``model`` on each (engine kind, precision) in ``engines``, plus the machine's peak.

    ``runtime`` configures the streaming measurement (capture block, polling; default: the
    runtime defaults).

    Returns:
        ``{"machine": {...}, "model": {...}, "engines": [{...}, ...]}``, JSON-serialisable.
    """
    flops = window_flops(model.network, model.window_samples)
    peak_fp32 = matmul_peak_gflops(torch.float32, model.device)
    report: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "matmul_peak_gflops_fp32": peak_fp32,
            "peak_measured_on": str(model.device),
            "matmul_peak_gflops_bf16": matmul_peak_gflops(torch.bfloat16, model.device),
        },
        "model": {
            "window_samples": model.window_samples,
            "hop_samples": model.hop_samples,
            "gflop_per_window": flops / 1e9,
        },
        "runtime": to_dict(runtime or RuntimeConfig()),
        "engines": [],
    }
    for kind, precision in engines:
        engine = create_engine(model, kind, precision)
        figures: dict[str, Any] = {
            "engine": kind,
            "precision": precision,
            "runs_on": getattr(engine, "name", kind),
        }
        figures.update(measure_throughput(engine, audio_s=audio_s, batch_size=batch_size))
        achieved = flops / (figures["ms_per_window"] / 1000.0) / 1e9
        figures["gflops"] = achieved
        figures["fraction_of_fp32_peak"] = achieved / peak_fp32
        figures.update(measure_streaming(engine, seconds=stream_s, config=runtime))
        report["engines"].append(figures)
    return report
