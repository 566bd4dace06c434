"""``rtag info``: describe a model bundle (or an architecture config)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from rtag.bundle import read_bundle
from rtag.config import ModelConfig, load_yaml
from rtag.engines import describe_engine
from rtag.model import TaggerModel, default_bundle_path
from rtag.networks import build_network, count_parameters

_KIND_NAMES = {"audio": "cnn-audio", "spec": "cnn-spec", "comb": "cnn-comb"}
SHOWN_DIGITS = 4  # significant digits of the provenance's floats in the text form (the JSON form keeps them whole)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` sub-command."""
    parser = subparsers.add_parser(
        "info",
        help="describe a model bundle: architecture, parameters, labels, audio parameters, provenance",
        description="Describe a model bundle (default: the bundled default model), or with --config "
        "an architecture config without weights.",
    )
    parser.add_argument("bundle", nargs="?", type=Path, help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("--config", type=Path, help="describe this model config (YAML) instead of a bundle")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def describe(config: ModelConfig) -> dict[str, object]:
    """Architecture facts of ``config``: kind, input sizes and parameter counts."""
    network = build_network(config)
    return {
        "architecture": _KIND_NAMES[config.kind],
        "window_samples": config.window_samples,
        "window_s": round(config.window_s, 4),
        "sample_rate_hz": config.sample_rate_hz,
        "spec_frames": config.spec_frames,
        "head_units": list(config.head_units),
        "parameters_keras_style": count_parameters(network, keras_style=True),
        "parameters_trainable": count_parameters(network, keras_style=False),
    }


def run(args: argparse.Namespace) -> int:
    """Print the description; returns the exit code."""
    if args.config is not None:
        facts = describe(load_yaml(args.config, ModelConfig))
        facts = {"config": str(args.config), **facts}
    else:
        bundle = read_bundle(args.bundle or default_bundle_path())
        facts = {
            "bundle": str(bundle.path),
            "format_version": bundle.format_version,
            **describe(bundle.config),
            "hop_samples": bundle.hop_samples,
            "hop_s": round(bundle.hop_samples / bundle.config.sample_rate_hz, 4),
            "num_classes": len(bundle.labels),
            "labels": list(bundle.labels),
            "engine": describe_engine(TaggerModel.from_read_bundle(bundle).engine()),
            "provenance": bundle.provenance,
        }
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    width = max(len(key) for key in facts)
    for key, value in facts.items():
        if key == "labels":
            value = ", ".join(value)
        elif key == "provenance":
            print("provenance:")
            print(provenance_text(value), end="")
            continue
        elif isinstance(value, int) and key.startswith("parameters"):
            value = f"{value:,}"
        print(f"{key:<{width}}  {value}")
    return 0


def provenance_text(provenance: dict) -> str:
    """A bundle's provenance as indented YAML lines (floats to four significant digits, short lists on one line)."""
    text = yaml.safe_dump(_rounded(provenance), sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)
    return "".join(f"  {line}\n" for line in text.splitlines())


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.{SHOWN_DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value
