"""``python -m offline predict CONFIG``: test-set predictions of each stage's fold ensemble."""

from __future__ import annotations

import argparse

from offline.commands.arguments import add_experiment_arguments, experiment_from_args
from offline.config import STAGES
from offline.prediction import predict_stage, predict_validation

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` parser."""
    parser = subparsers.add_parser("predict", help="predict the test clips (crops every 5120 samples, geometric mean)",
        description="Predict every test (or held-out) clip with each fold model of a stage: crops every "
                    "--step-samples, combined by geometric mean over crops and folds; saved for evaluate.")
    add_experiment_arguments(parser)
    parser.add_argument("--stage", choices=STAGES, action="append", help="stage(s) to predict (default: train.stages)")
    parser.add_argument(
        "--zero-branch", choices=("audio", "spec"), help="cnn-comb with this input set to zero (Figure 2 ablation)"
    )
    parser.add_argument("--folds", type=int, nargs="+", help="fold models to combine (default: all trained)")
    parser.add_argument("--step-samples", type=int, help="TTA step (default predict.step_samples; 51200 = efficient)")
    parser.add_argument(
        "--validation", action="store_true", help="out-of-fold predictions of the training clips instead of the test set"
    )
    parser.add_argument("--name", help="name of the prediction set (default: the stage, e.g. comb or comb_zero-audio)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write ``predictions/<name>.{csv,npy}`` for each requested stage."""
    cfg = experiment_from_args(args)
    stages = args.stage or (["comb"] if args.zero_branch else list(cfg.train.stages))
    if args.validation and (args.zero_branch or args.name or args.folds):
        raise ValueError("--validation predicts each training clip with its own fold model; drop --zero-branch, --name and --folds")
    if args.name and len(stages) > 1:
        raise ValueError("--name needs exactly one --stage")
    for stage in stages:
        if args.validation:
            print(f"wrote {predict_validation(cfg, stage, args.step_samples, args.device, cfg.train.progress)}")
            continue
        path = predict_stage(
            cfg,
            stage,
            zero_branch=args.zero_branch,
            folds=args.folds,
            step_samples=args.step_samples,
            device=args.device,
            progress=cfg.train.progress,
            name=args.name,
        )
        print(f"wrote {path}")
    return 0
