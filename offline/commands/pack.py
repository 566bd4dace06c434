"""``python -m offline pack CONFIG --out DIR``: a compact copy of the prepared training clips."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from offline.commands.arguments import add_experiment_arguments, experiment_from_args
from offline.datasets import manifest_clip_id
from offline.pack import pack_training_set
from offline.training import training_clips

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pack`` parser."""
    parser = subparsers.add_parser(
        "pack", help="write the prepared training clips as a small Opus corpus (to train on another machine)",
        description="Code every prepared training clip of the config's cache (its loudest stretch of at most "
                    "--max-clip-s) as Ogg Opus at 48 kHz and write a manifest that `prepare` reads: a training set "
                    "of tens of MB instead of GB, for a machine that only a small working tree reaches.")
    add_experiment_arguments(parser)
    parser.add_argument("--out", required=True, help="the pack folder (clips/, manifest.csv, pack.json)")
    parser.add_argument("--max-clip-s", type=float, default=4.0,
                        help="longest stretch kept of a clip, in seconds (default 4; 0 keeps whole clips)")
    parser.add_argument("--compression-level", type=float, default=0.9,
                        help="libsndfile's Opus compression level, 0 (largest) to 1 (smallest) (default 0.9: about 35 kbit/s)")
    parser.add_argument("--workers", type=int, default=1, help="coding processes (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the pack of the clips training would use (``training_clips``) and print its size."""
    cfg = experiment_from_args(args)
    clips = training_clips(cfg)
    origin = {}
    if cfg.data.layout == "manifest":
        with Path(cfg.data.root).open(newline="", encoding="utf-8") as handle:
            origin = {manifest_clip_id(row["path"].strip()): row for row in csv.DictReader(handle)}
    report = pack_training_set(
        clips, args.out, sample_rate_hz=cfg.model.sample_rate_hz, max_clip_s=args.max_clip_s or None,
        compression_level=args.compression_level, origin=origin, workers=args.workers,
        settings={"config": cfg.name, "data_root": str(cfg.data.root), "cache_dir": str(cfg.data.cache_dir)},
    )
    print(f"packed {report.clips} clips ({report.seconds / 60:.1f} min of audio, {report.cut} cut to "
          f"{args.max_clip_s:g} s) into {args.out}: {report.audio_bytes / 2**20:.1f} MiB of Opus, "
          f"{report.audio_bytes * 8 / max(report.seconds, 1e-9) / 1000:.1f} kbit/s")
    return 0
