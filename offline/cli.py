"""The ``python -m offline`` command line: one sub-command per module in :data:`COMMAND_MODULES`.

Each module exposes ``register(subparsers) -> None`` (adds its parser and sets ``func=run``) and
``run(args) -> int``; adding a sub-command is adding its module name here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

COMMAND_MODULES: tuple[str, ...] = (
    "offline.commands.prepare",
    "offline.commands.train",
    "offline.commands.predict",
    "offline.commands.evaluate",
    "offline.commands.export",
    "offline.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="python -m offline",
        description="Train and evaluate rtag models as in the papers: prepare, train, predict, evaluate, export.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (2 for a reported error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        # Config, dataset, audio, checkpoint and bundle errors all name the file or key at fault.
        print(f"offline {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
