"""``rtag bench``: throughput, streaming latency, CPU and memory of each engine, side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rtag.bench import run_bench
from rtag.config import ModelConfig, load_yaml
from rtag.engines import PRECISIONS, parse_engines
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import TaggerModel, load_model
from rtag.networks import build_network
from rtag.quantize import int8_graph_for
from rtag.runtime_config import load_runtime_config


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` sub-command."""
    parser = subparsers.add_parser(
        "bench",
        help="measure each engine: seconds per audio minute, streaming latency, CPU and memory",
        description="Measure each engine on the same model: offline throughput (seconds per audio minute "
        "with windows every hop), streaming latency p50/p99 from window end to callback, CPU and memory "
        "while streaming, and the machine's matrix-multiply peak.",
    )
    parser.add_argument("bundle", nargs="?", type=Path, help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument(
        "--config", type=Path, help="time this architecture (YAML) with random weights instead of a bundle"
    )
    parser.add_argument(
        "--engines",
        default=None,
        help=f"comma-separated ENGINE:PRECISION pairs (default all: {','.join(ALL_ENGINES)}; onnx:int8 only "
        "where the model has an int8 graph)",
    )
    parser.add_argument("--audio-s", type=float, default=60.0, help="audio timed offline (default 60 s)")
    parser.add_argument("--stream-s", type=float, default=20.0, help="real-time listening per engine (default 20 s)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per offline batch (default 8)")
    parser.add_argument("--device", default="auto", help="torch device: auto (default), cpu, cuda")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="runtime config key for the streaming measurement, e.g. --set capture_block_samples=256 (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.set_defaults(func=run)


ALL_ENGINES = tuple(f"{kind}:{precision}" for kind, precisions in PRECISIONS.items() for precision in precisions)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print a table; returns the exit code."""
    engines = parse_engines(args.engines or ",".join(ALL_ENGINES))
    if args.config is not None:
        config = load_yaml(args.config, ModelConfig)
        torch.manual_seed(0)
        labels = FSDKAGGLE2018_LABELS[: config.num_classes]
        model = TaggerModel.from_network(build_network(config), config, labels, device=args.device)
    else:
        model = load_model(args.bundle, device=args.device)
    if args.engines is None and int8_graph_for(model) is None:
        engines.remove(("onnx", "int8"))
        print("onnx:int8 left out: this model has no int8 graph (rtag export BUNDLE --precision int8)")
    runtime = load_runtime_config(None, args.set)
    report = run_bench(
        model, engines, audio_s=args.audio_s, stream_s=args.stream_s, batch_size=args.batch_size, runtime=runtime
    )
    machine, facts = report["machine"], report["model"]
    print(
        f"machine: {machine['cpu']}, {machine['cpu_count']} cores, torch threads {machine['torch_threads']}, "
        f"matmul peak {machine['matmul_peak_gflops_fp32']:.0f} GFLOP/s fp32, "
        f"{machine['matmul_peak_gflops_bf16']:.0f} bf16 (on {machine['peak_measured_on']})"
    )
    print(
        f"model: window {facts['window_samples']} samples, hop {facts['hop_samples']}, "
        f"{facts['gflop_per_window']:.2f} GFLOP per window"
    )
    header = (
        f"{'engine':<11} {'runs on':<40} {'s/audio-min':>11} {'ms/window':>9} {'GFLOP/s':>8} {'of peak':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'CPU %':>6} {'RSS MB':>7}"
    )
    print(header)
    for row in report["engines"]:
        print(
            f"{row['engine'] + ':' + row['precision']:<11} {row['runs_on']:<40} {row['s_per_audio_minute']:>11.3f} {row['ms_per_window']:>9.1f} "
            f"{row['gflops']:>8.1f} {row['fraction_of_fp32_peak']:>7.1%} {_ms(row['latency_ms_p50']):>7} "
            f"{_ms(row['latency_ms_p99']):>7} {row['cpu_percent_of_one_core']:>6.1f} {_mb(row['rss_mb_end']):>7}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
