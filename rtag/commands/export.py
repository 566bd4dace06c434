"""``rtag export``: write a model bundle as an ONNX graph (log-mel inside, metadata attached)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtag.model import load_model
from rtag.onnx_export import ONNX_OPSET, export_onnx


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="export a model bundle to ONNX (raw audio in, probabilities out)",
        description="Export a model bundle to one ONNX graph from raw audio to class probabilities, "
        "with labels and audio parameters as ONNX metadata.",
    )
    parser.add_argument("bundle", nargs="?", type=Path, help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; returns the exit code."""
    model = load_model(args.bundle, device="cpu")
    path = export_onnx(model, args.output, opset=args.opset)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(model.labels)} classes, "
          f"window {model.window_samples} samples, hop {model.hop_samples} samples)")
    return 0
