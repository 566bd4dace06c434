"""Latency and CPU use of the streaming runtime on audio replayed at real-time pace.

    python benchmarks/stream_latency.py [--source FILE] [--duration-s 60] [--device cpu]
                                        [--engine torch|onnx] [--precision fp32|bf16|int8]
                                        [--torch-threads N] [--json]
                                        [--model BUNDLE | --config configs/model/comb_2s.yaml]

By default the network is the real 2 s cnn-comb architecture with random weights (timing does not
depend on the weights); --model times a bundle instead (needed for int8, whose graph is kept
beside the bundle). Latency runs from the capture of a window's last sample to its on_window callback;
CPU is this process's user + system time over the wall time (100 % = one core busy). `rtag bench`
measures the same for every engine at once, with offline throughput beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from rtag.audio_io import load_audio
from rtag.bench import measure_streaming
from rtag.config import ModelConfig, load_yaml
from rtag.engines import ENGINE_KINDS, create_engine
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import TaggerModel, load_model
from rtag.networks import build_network

REPO_ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="audio file to replay (default: generated noise)")
    parser.add_argument("--duration-s", type=float, default=60.0, help="listening time (default 60)")
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "model" / "comb_2s.yaml",
                        help="model architecture (default: the 2 s cnn-comb)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--model", type=Path, help="model bundle to time instead of --config with random weights")
    parser.add_argument("--engine", choices=ENGINE_KINDS, default="torch", help="inference engine (default torch)")
    parser.add_argument("--precision", default="fp32", help="fp32 (default), bf16 (torch) or int8 (onnx)")
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if args.model is not None:
        model = load_model(args.model, device=args.device)
    else:
        config = load_yaml(args.config, ModelConfig)
        torch.manual_seed(0)
        model = TaggerModel.from_network(build_network(config), config, FSDKAGGLE2018_LABELS, device=args.device)
    engine = create_engine(model, args.engine, args.precision)
    audio = load_audio(args.source, model.sample_rate_hz) if args.source else None
    figures = {
        "model": str(args.model) if args.model else f"{args.config} (random weights)",
        "engine": getattr(engine, "name", args.engine),
        "torch_threads": torch.get_num_threads(),
        "source": str(args.source) if args.source else "generated noise",
        **measure_streaming(engine, seconds=args.duration_s, audio=audio),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:<26} {round(value, 1) if isinstance(value, float) else value}")
    return 0 if figures["stream_windows"] else 1


if __name__ == "__main__":
    sys.exit(main())
