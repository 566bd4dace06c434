"""``rtag export``: write a model bundle as an ONNX graph (fp32, or int8 calibrated on real audio)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtag.model import load_model
from rtag.onnx_export import FRONT_ENDS, ONNX_OPSET, export_onnx
from rtag.quantize import CALIBRATION_METHODS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="export a model bundle to ONNX (fp32, or int8 calibrated on audio files)",
        description="Export a model bundle to ONNX with labels and audio parameters as metadata. "
        "fp32: one graph from raw audio to class probabilities (--front-end graph, the default), or the "
        "graph after the log-mel front end (--front-end host). int8: the host form with convolutions and "
        "dense layers quantized, activation ranges calibrated on --calibration audio; keep it beside the "
        "bundle as NAME.int8.onnx for the onnx engine's int8 precision.",
    )
    parser.add_argument("bundle", nargs="?", type=Path, help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    parser.add_argument(
        "--front-end", choices=FRONT_ENDS, default="graph", help="fp32 only: log-mel inside the graph (default) or not"
    )
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="weights and activations")
    parser.add_argument(
        "--calibration", type=Path, nargs="+", metavar="AUDIO", help="int8: audio files, folders, or a manifest CSV (its train rows) to calibrate on"
    )
    parser.add_argument(
        "--calibration-windows", type=int, default=256, help="int8: windows drawn from the audio (default 256)"
    )
    parser.add_argument(
        "--calibration-method", choices=CALIBRATION_METHODS, default="minmax", help="int8: range estimate"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; returns the exit code."""
    model = load_model(args.bundle, device="cpu")
    if args.precision == "int8":
        from rtag.quantize import calibration_windows, quantize_onnx

        if not args.calibration:
            raise ValueError("--precision int8 needs --calibration AUDIO (files or folders of real audio)")
        windows, counts = calibration_windows(args.calibration, model, max_windows=args.calibration_windows)
        if counts["files_unreadable"]:
            print(f"calibration: {counts['files_unreadable']} of {counts['files']} files unreadable, skipped")
        path = quantize_onnx(
            model,
            args.output,
            windows,
            method=args.calibration_method,
            calibration_facts={"sources": [str(p) for p in args.calibration], **counts},
        )
        detail = f"int8, calibrated on {counts['windows']} windows from {counts['files']} files"
    else:
        path = export_onnx(model, args.output, opset=args.opset, front_end=args.front_end)
        detail = f"fp32, front end: {args.front_end}"
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {detail}; {len(model.labels)} classes, "
          f"window {model.window_samples} samples, hop {model.hop_samples} samples)")
    return 0
