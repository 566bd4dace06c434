"""``python -m offline train CONFIG``: the three training stages over the folds (resumable).

For several GPUs or nodes run it under torchrun, e.g.
``torchrun --nproc_per_node=4 -m offline train configs/train/fsd2018_2s.yaml``.
"""

from __future__ import annotations

import argparse
import os

from offline.commands.arguments import add_experiment_arguments, experiment_from_args
from offline.training import train_experiment

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` parser."""
    parser = subparsers.add_parser("train", help="train cnn-audio, cnn-spec and cnn-comb on every fold",
        description="Train the stages of train.stages (cnn-audio, cnn-spec, then cnn-comb on their frozen features) "
                    "on the folds of train.folds, with per-epoch checkpoints: a killed run resumes where it stopped.")
    add_experiment_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train; prints one line per stage and fold (from the first process only under torchrun)."""
    results = train_experiment(experiment_from_args(args))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    for r in results:
        print(
            f"{r.stage} fold {r.fold}: {r.epochs} epochs, best epoch {r.best_epoch}, "
            f"val loss {r.best_val_loss:.4f}, val mAP@3 {r.best_val_map3:.4f}"
            + (", stopped early" if r.stopped_early else "")
        )
    return 0
