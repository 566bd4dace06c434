"""Arguments every sub-command shares: the experiment config and ``--set`` overrides."""

from __future__ import annotations

import argparse

from offline.config import ExperimentConfig, load_experiment

__all__ = ["add_experiment_arguments", "experiment_from_args"]


def add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the positional ``config`` and the repeatable ``--set KEY=VALUE`` to ``parser``."""
    parser.add_argument("config", help="experiment YAML (configs/train/*.yaml) or a run's config.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.epochs=3 --set data.root=/data/FSDKaggle2018 (repeatable)",
    )


def experiment_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """The experiment config named by ``args.config`` with ``args.overrides`` applied."""
    return load_experiment(args.config, args.overrides)
