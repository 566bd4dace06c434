"""Latency and CPU use of the streaming runtime on a file replayed at real-time pace.

    python benchmarks/stream_latency.py [--source FILE] [--duration-s 60] [--device cpu]
                                        [--torch-threads N] [--config configs/model/comb_2s.yaml]

The network is the real 2 s cnn-comb architecture with random weights (timing does not depend on
the weights). Latency is measured from the capture of a window's last sample (its wall-clock
time in the replay) to the moment the on_window callback runs. CPU use is this process's user +
system CPU time over the wall time while listening (100 % = one core busy).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import rtag
from rtag.config import ModelConfig, load_yaml
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.networks import build_network

REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="audio file to replay (default: 60 s of generated noise)")
    parser.add_argument("--duration-s", type=float, default=60.0, help="listening time (default 60)")
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "model" / "comb_2s.yaml",
                        help="model architecture (default: the 2 s cnn-comb)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    config = load_yaml(args.config, ModelConfig)
    torch.manual_seed(0)
    model = rtag.TaggerModel.from_network(build_network(config), config, FSDKAGGLE2018_LABELS, device=args.device)
    model.predict(np.zeros((1, model.window_samples), np.float32))  # warm-up outside the measurement

    with tempfile.TemporaryDirectory() as folder:
        source_path = args.source
        if source_path is None:
            source_path = Path(folder) / "noise.wav"
            noise = np.random.default_rng(0).standard_normal(int((args.duration_s + 2) * 44100)) * 0.1
            sf.write(str(source_path), noise.astype(np.float32), 44100)
        latencies_ms: list[float] = []

        def on_window(result: rtag.WindowResult) -> None:
            latencies_ms.append((time.monotonic() - result.window.capture_time_s) * 1000.0)

        source = rtag.FileSource(source_path, realtime=True)
        cpu_start, wall_start = cpu_seconds(), time.monotonic()
        with rtag.StreamTagger(model, source, on_window=on_window) as stream:
            stream.run_for(args.duration_s)
            cpu_used, wall = cpu_seconds() - cpu_start, time.monotonic() - wall_start
        stats = stream.stats()

    latencies = np.array(latencies_ms)
    figures = {
        "architecture": str(args.config.relative_to(REPO_ROOT) if args.config.is_relative_to(REPO_ROOT) else args.config),
        "window_samples": model.window_samples,
        "hop_samples": model.hop_samples,
        "device": str(model.device),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "source": str(args.source) if args.source else "generated noise",
        "listening_s": round(wall, 2),
        "windows": int(latencies.size),
        "windows_dropped": stats.windows_dropped,
        "lost_samples": stats.lost_samples,
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1) if latencies.size else None,
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 1) if latencies.size else None,
        "latency_ms_max": round(float(latencies.max()), 1) if latencies.size else None,
        "cpu_percent_of_one_core": round(100.0 * cpu_used / wall, 1),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:<26} {value}")
    return 0 if latencies.size else 1


if __name__ == "__main__":
    sys.exit(main())
