"""``python -m offline prepare CONFIG``: decode, trim (40 dB) and cache every clip once."""

from __future__ import annotations

import argparse

from offline.commands.arguments import add_experiment_arguments, experiment_from_args
from offline.datasets import read_dataset
from offline.preprocess import prepare_cache

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` parser."""
    parser = subparsers.add_parser("prepare", help="trim silence and cache the dataset's audio (resumable; exit code 1 if clips were unreadable)",
        description="Decode every clip of the dataset, trim leading and trailing silence (data.trim_top_db), resample "
                    "to 44.1 kHz mono and cache it; unreadable clips are named and skipped (exit code 1). Resumable.")
    add_experiment_arguments(parser)
    parser.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the cache; prints what was done and every skipped clip's count.

    Returns 0 when every clip was cached, 1 when some were skipped as unreadable (the others are
    cached all the same, and training uses them).
    """
    cfg = experiment_from_args(args)
    records = read_dataset(cfg.data.layout, cfg.data.root)
    report = prepare_cache(
        records,
        cfg.data.cache_dir,
        sample_rate_hz=cfg.model.sample_rate_hz,
        top_db=cfg.data.trim_top_db,
        workers=args.workers,
        progress=cfg.train.progress,
    )
    print(
        f"prepared {report.cached} clips, reused {report.reused} from the cache, "
        f"kept {report.silent} silent clips untrimmed, skipped {len(report.skipped)} unreadable clips"
        + (f" (listed in {cfg.data.cache_dir}/skipped.csv)" if report.skipped else "")
    )
    return 1 if report.skipped else 0
