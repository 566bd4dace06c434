"""The ``python -m offline`` command line: one sub-command per module in :data:`COMMAND_MODULES`.

Each module exposes ``register(subparsers) -> None`` (adds its parser and sets ``func=run``) and
``run(args) -> int``; adding a sub-command is adding its name and module here. A sub-command whose
optional dependencies (the ``train`` extra) are missing says what to install.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rtag.cli import build_command_parser, run_command_line

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

COMMAND_MODULES: dict[str, str] = {
    "prepare": "offline.commands.prepare",
    "train": "offline.commands.train",
    "predict": "offline.commands.predict",
    "evaluate": "offline.commands.evaluate",
    "export": "offline.commands.export",
    "bench": "offline.commands.bench",
    "pack": "offline.commands.pack",
    "build-corpus": "offline.corpus.command",
    "corpus-report": "offline.corpus.report",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    return build_command_parser(
        "python -m offline",
        "Train and evaluate rtag models as in the papers: prepare, train, predict, evaluate, export.",
        COMMAND_MODULES,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (2 for a reported error)."""
    return run_command_line(build_parser, argv, quiet_log_level=logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
