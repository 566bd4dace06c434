"""``rtag devices``: list the audio input devices ``rtag listen --device`` accepts."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from rtag.sources import list_input_devices

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``devices`` sub-command."""
    parser = subparsers.add_parser(
        "devices",
        help="list audio input devices (index, name, host API, channels, native rate)",
        description="List audio input devices; the default one is marked with '*'. Pass an index or "
        "a part of a name to 'rtag listen --device'.",
    )
    parser.add_argument("--json", action="store_true", help="print the devices as one JSON array ([] when there is none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the input devices; exit code 1 when there is none, 2 when the audio system cannot be
    asked (with ``--json`` stdout still holds a JSON array, empty, and stderr says why)."""
    try:
        devices = list_input_devices()
    except (OSError, ValueError) as exc:
        if not args.json:
            raise
        print("[]")
        print(f"rtag devices: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(device) for device in devices]))
    if not devices:
        print(
            "no audio input device found; 'rtag listen --source FILE' replays a file instead",
            file=sys.stderr,
        )
        return 1
    if not args.json:
        for device in devices:
            print(device)
    return 0
