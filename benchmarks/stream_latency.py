"""Latency and CPU use of the streaming runtime on audio replayed at real-time pace.

    python benchmarks/stream_latency.py [--source FILE] [--duration-s 60] [--device cpu]
                                        [--engine auto|torch|onnx] [--precision auto|fp32|bf16|int8]
                                        [--torch-threads N] [--set KEY=VALUE ...] [--json]
                                        [--model BUNDLE | --config configs/model/comb_2s.yaml]

By default the model is the bundled one on the runtime's default engine (auto: on a CPU, torch
bf16 where it has AMX, else int8 from the graph beside the bundle); --config times an
architecture with random weights instead (timing does not depend on the weights), --set
overrides runtime config keys (capture block, polling, ...). Latency runs from the capture of a
window's last sample to its on_window callback; CPU is this process's user + system time over
the wall time (100 % = one core busy). `rtag bench` measures the same for every engine at once,
with offline throughput beside it.
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
from rtag.engines import AUTO, ENGINE_KINDS, create_engine, describe_engine
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import TaggerModel, load_model
from rtag.networks import build_network
from rtag.runtime_config import load_runtime_config

REPO_ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="audio file to replay (default: generated noise)")
    parser.add_argument("--duration-s", type=float, default=60.0, help="listening time (default 60)")
    parser.add_argument("--config", type=Path, help="time this model architecture (YAML) with random weights")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--model", type=Path, help="model bundle (default: the bundled model)")
    parser.add_argument("--engine", choices=ENGINE_KINDS, default=AUTO, help="inference engine (default auto)")
    parser.add_argument("--precision", default=AUTO, help="auto (default), fp32, bf16 (torch) or int8 (onnx)")
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="runtime config key (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if args.config is None:
        model = load_model(args.model, device=args.device)
    else:
        config = load_yaml(args.config, ModelConfig)
        torch.manual_seed(0)
        model = TaggerModel.from_network(build_network(config), config, FSDKAGGLE2018_LABELS, device=args.device)
    engine = create_engine(model, args.engine, args.precision)
    audio = load_audio(args.source, model.sample_rate_hz) if args.source else None
    runtime = load_runtime_config(None, args.set)
    figures = {
        "model": f"{args.config} (random weights)" if args.config else str(model.source_path),
        "engine": describe_engine(engine),
        "torch_threads": torch.get_num_threads(),
        "source": str(args.source) if args.source else "generated noise",
        "runtime_overrides": " ".join(args.set) or "none",
        **measure_streaming(engine, seconds=args.duration_s, audio=audio, config=runtime),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:<26} {round(value, 1) if isinstance(value, float) else value}")
    return 0 if figures["stream_windows"] else 1


if __name__ == "__main__":
    sys.exit(main())
