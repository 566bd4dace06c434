"""Every sub-command of ``rtag`` and ``python -m offline`` explains itself in ``--help``."""

from __future__ import annotations

import argparse

import pytest

from offline.cli import build_parser as offline_parser
from rtag.cli import build_parser as rtag_parser


def _sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("build", [rtag_parser, offline_parser], ids=["rtag", "offline"])
def test_every_sub_command_has_a_description(build) -> None:
    commands = _sub_commands(build())
    assert len(commands) >= 6
    missing = [name for name, parser in commands.items() if not (parser.description or "").strip()]
    assert missing == []
