"""``python -m offline export CONFIG``: an rtag model bundle from a trained cnn-comb fold model.

The technical report's efficient model is one of the five 2 s cnn-comb fold models, run with
crops every 51200 samples; that is what the default arguments produce. Provenance in the bundle:
dataset, training clip count, run name, stage, fold, epoch, validation metrics, the test metrics
of ``report/results.json`` when present, the resolved config and the git commit.
``predict.negative_logit_offset`` is folded into the last layer's bias (and recorded), and
``predict.highpass_hz``, when set, becomes the bundle's rumble filter (``model.highpass_hz``;
the value the model was trained with is recorded beside it). ``--onnx``
also writes the ONNX graph that ``rtag export`` would write from the bundle.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from offline.commands.arguments import add_experiment_arguments, experiment_from_args
from offline.config import STAGES
from offline.prediction import apply_front_end, apply_negative_logit_offset
from offline.run_layout import RunLayout
from offline.training import load_stage_network
from rtag.bundle import save_bundle
from rtag.config import ModelConfig, from_dict
from rtag.model import TaggerModel
from rtag.onnx_export import export_onnx

__all__ = ["git_commit", "register", "run"]


def git_commit() -> str:
    """The checked-out commit of this source tree (``+dirty`` if modified), or ``"unknown"``."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def _heldout_summary(path: Path) -> dict[str, dict[str, float]]:
    """clips, mAP@3 and top-1 of each held-out group of a ``corpus-report`` (per-class rows left out)."""
    groups = json.loads(path.read_text(encoding="utf-8"))["groups"]
    return {name: {k: scores[k] for k in ("clips", "map3", "top1")} for name, scores in groups.items()}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` parser."""
    parser = subparsers.add_parser("export", help="write an rtag model bundle from a trained fold model",
        description="Write the best checkpoint of one stage and fold as an rtag model bundle (*.rtag) with its "
                    "provenance (data, validation and held-out figures, git commit); --onnx also exports the ONNX graph.")
    add_experiment_arguments(parser)
    parser.add_argument("--output", required=True, help="bundle file to write (*.rtag)")
    parser.add_argument("--stage", choices=STAGES, default="comb", help="stage to export (default comb)")
    parser.add_argument("--fold", type=int, help="fold model to export (default: lowest validation loss)")
    parser.add_argument("--onnx", help="also write the bundle as an ONNX graph to this path (as `rtag export` does)")
    parser.add_argument("--hop-samples", type=int, default=51200, help="streaming hop stored in the bundle (default 51200)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the bundle and print its path."""
    cfg = experiment_from_args(args)
    layout = RunLayout(Path(cfg.run_dir))
    folds = layout.trained_folds(args.stage)
    if not folds:
        raise FileNotFoundError(f"{layout.root / args.stage}: no trained {args.stage} models; run train first")
    candidates = {fold: load_stage_network(layout, args.stage, fold) for fold in ([args.fold] if args.fold is not None else folds)}
    fold = min(candidates, key=lambda f: candidates[f][1]["val_loss"])
    network, checkpoint = candidates[fold]
    apply_negative_logit_offset(network, checkpoint["labels"], cfg)
    results_path = layout.report_dir / "results.json"
    heldout_path = layout.report_dir / "heldout.json"
    provenance: dict[str, Any] = {
        "data": {"layout": cfg.data.layout, "root": cfg.data.root, "trim_top_db": cfg.data.trim_top_db},
        "train_clips": sum(1 for line in layout.folds_path.read_text(encoding="utf-8").splitlines()[1:] if line),
        "run": cfg.name,
        "stage": args.stage,
        "fold": fold,
        "epoch": checkpoint["epoch"],
        "val_loss": checkpoint["val_loss"],
        "val_map3": checkpoint["val_map3"],
        "negative_logit_offset": cfg.predict.negative_logit_offset,
        "trained_highpass_hz": checkpoint["config"]["model"].get("highpass_hz"),
        "test_metrics": json.loads(results_path.read_text(encoding="utf-8"))["table3"] if results_path.exists() else None,
        "heldout": _heldout_summary(heldout_path) if heldout_path.exists() else None,
        "config": checkpoint["config"],
        "git_commit": git_commit(),
    }
    network, model_cfg = apply_front_end(network, from_dict(ModelConfig, checkpoint["config"]["model"]), cfg)
    path = save_bundle(args.output, network, model_cfg, checkpoint["labels"], hop_samples=args.hop_samples, provenance=provenance)
    print(f"wrote {path} ({args.stage} fold {fold}, val mAP@3 {checkpoint['val_map3']:.4f})")
    if args.onnx:
        print(f"wrote {export_onnx(TaggerModel.from_bundle(path, device='cpu'), args.onnx)}")
    return 0
