"""The ``rtag`` command line: one sub-command per module in :mod:`rtag.commands`.

:func:`build_command_parser` and :func:`run_command_line` are shared with ``python -m offline``:
each sub-command module exposes ``register(subparsers) -> None`` (adds its parser and sets
``func=run``) and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from rtag import __version__

__all__ = [
    "COMMAND_MODULES", "EXTRA_OF_MODULE", "build_command_parser", "build_parser", "main", "missing_dependency_message",
    "run_command_line",
]

COMMAND_MODULES: dict[str, str] = {
    name: f"rtag.commands.{name}" for name in ("info", "export", "devices", "listen", "tag", "bench")
}


EXTRA_OF_MODULE: dict[str, str] = {"matplotlib": "train", "sklearn": "train", "mido": "train"}
"""Third-party modules that only an optional extra of rtag installs, by extra."""


def missing_dependency_message(exc: ModuleNotFoundError) -> str:
    """One line saying what to install for the module ``exc`` could not import."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    install = f"pip install 'rtag[{extra}]'" if extra else f"pip install {module}"
    return f"needs the Python module {module!r}, which is not installed: {install}"


def _register_unavailable(subparsers: argparse._SubParsersAction, command: str, message: str) -> None:
    parser = subparsers.add_parser(command, help=f"(unavailable: {message})", description=message, add_help=False)
    parser.add_argument("ignored", nargs=argparse.REMAINDER)

    def unavailable(args: argparse.Namespace) -> int:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2

    parser.set_defaults(func=unavailable)


def build_command_parser(
    prog: str, description: str, command_modules: Mapping[str, str], version: str | None = None
) -> argparse.ArgumentParser:
    """A parser with ``-v/--verbose`` and one sub-command per module in ``command_modules``.

    A sub-command whose module needs a third-party module that is not installed (an optional
    extra) is still listed; running it prints one line saying what to install, exit code 2.

    Args:
        prog: program name shown in usage lines.
        description: one-line description shown by ``--help``.
        command_modules: sub-command name -> importable module with ``register(subparsers)``.
        version: if given, a ``--version`` flag printing it.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    if version is not None:
        parser.add_argument("--version", action="version", version=version)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, name in command_modules.items():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in ("rtag", "offline"):
                raise
            _register_unavailable(subparsers, command, missing_dependency_message(exc))
            continue
        module.register(subparsers)
    return parser


def run_command_line(
    build: Callable[[], argparse.ArgumentParser], argv: Sequence[str] | None, quiet_log_level: int = logging.WARNING
) -> int:
    """Build the parser, parse ``argv`` and run the chosen sub-command; returns the process exit code.

    Errors that rtag raises for bad input (``ValueError`` subclasses such as BundleError,
    ConfigError and AudioFileError, and ``OSError``) name the file, key or device at fault; they
    are printed as one line and give exit code 2, never a traceback. Ctrl-C gives 130 at any
    point; while the sub-commands' modules (torch among them) are still being imported it takes
    effect once they are in.

    Args:
        build: makes the parser (:func:`build_command_parser`); called here, inside the
            Ctrl-C handling.
        argv: the arguments (``None``: ``sys.argv[1:]``).
        quiet_log_level: the log level without ``--verbose`` (default WARNING).
    """
    interrupted = False

    def defer(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    # Ctrl-C while the sub-commands' modules import is held until they are in: a signal that
    # lands inside a C extension's import (numpy's, torch's) can leave it half made, and what
    # follows fails with an unrelated error instead of stopping.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, defer) if main_thread else None
    try:
        parser = build()
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        return 130
    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return 130
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else quiet_log_level,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The ``rtag`` argument parser with every sub-command registered."""
    return build_command_parser(
        "rtag",
        "Streaming real-time audio tagger (cnn-audio + cnn-spec -> cnn-comb).",
        COMMAND_MODULES,
        version=f"rtag {__version__}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rtag`` command line; returns the process exit code."""
    return run_command_line(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
