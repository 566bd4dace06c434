"""``python -m offline evaluate CONFIG``: mAP@3 tables, ablation, submission CSV and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from offline.commands.arguments import add_experiment_arguments, experiment_from_args
from offline.evaluation import evaluate_run, format_table3
from offline.run_layout import RunLayout

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` parser."""
    parser = subparsers.add_parser("evaluate", help="score the predictions (Table 3/4, Figure 2) and plot",
        description="Score the saved test predictions with mAP@3 on the public, private and full test sets "
                    "(the papers' Table 3 and 4), per class (Figure 2), and write the tables, CSV and plots.")
    add_experiment_arguments(parser)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and print the Table 3 rows."""
    cfg = experiment_from_args(args)
    results = evaluate_run(cfg, plots=not args.no_plots)
    print(format_table3(results))
    print(f"report in {RunLayout(Path(cfg.run_dir)).report_dir}")
    return 0
