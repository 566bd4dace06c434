"""Accuracy of every engine and precision against fp32 torch, on labelled held-out clips.

    python benchmarks/engine_accuracy.py MANIFEST.csv [--model BUNDLE] [--split heldout]
        [--engines torch:fp32,torch:bf16,onnx:fp32,onnx:int8] [--step-samples 51200]
        [--weightings energy,equal] [--json OUT] [--confusion DIR]

Each clip of the manifest's split (``path,label,split,quality`` columns, as written by
``python -m offline build-corpus``) is tagged by each engine with the test-time procedure
(inputs every ``--step-samples``, geometric mean), each input through the engine once and
combined with every weighting of ``--weightings`` (default ``energy``, rtag's; ``equal`` is the
papers', see :mod:`rtag.tta`). Printed per engine and weighting: mAP@3 and top-1 accuracy
(overall, TimGM6mb renders, real recordings), the change of mAP@3 against the first engine, the
share of clips whose top-1 label agrees with it, and the largest probability difference. Clips
with labels the model does not know are counted and left out; unreadable clips are reported.
``--confusion DIR`` also writes the first engine's top-1 confusion matrices under its first
weighting, renders and real recordings apart (``heldout_confusion_renders.png``, ``..._real.png``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from offline.corpus.report import REAL, RENDERS, plot_group_confusions, source_group
from offline.datasets import manifest_clip_id
from offline.evaluation import PredictionSet, group_scores
from offline.metrics import top_k
from rtag.audio_io import AudioFileError, load_audio
from rtag.engines import Engine, create_engine, parse_engines, rumble_filter_of
from rtag.model import load_model
from rtag.tta import (
    WEIGHTINGS,
    GeometricMean,
    check_weighting,
    input_weights,
    tta_inputs,
)


def clip_probabilities(engine: Engine, clip: np.ndarray, step_samples: int, weightings: list[str]) -> list[np.ndarray]:
    """The clip's probabilities [C] by the test-time procedure, one per weighting, from one pass of its inputs."""
    inputs = tta_inputs(clip, engine.window_samples, step_samples)
    probs = np.concatenate([engine.predict(inputs[first : first + 32]) for first in range(0, inputs.shape[0], 32)])
    combined = []
    for weighting in weightings:
        mean = GeometricMean()
        mean.add(probs, input_weights(inputs, weighting, rumble_filter_of(engine)))
        combined.append(mean.result())
    return combined


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path, help="corpus manifest.csv")
    parser.add_argument("--model", type=Path, help="model bundle (default: the bundled model)")
    parser.add_argument("--split", default="heldout", help="manifest split to score (default heldout)")
    parser.add_argument("--engines", default="torch:fp32,torch:bf16,onnx:fp32,onnx:int8",
                        help="ENGINE:PRECISION pairs; the first is the reference")
    parser.add_argument("--step-samples", type=int, default=51200, help="test-time step (default 51200)")
    parser.add_argument("--weightings", default="energy",
                        help=f"comma-separated input weightings of the geometric mean ({', '.join(WEIGHTINGS)}; default energy)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--confusion", type=Path, metavar="DIR",
                        help="write the first engine's top-1 confusion matrices (renders, real) into DIR")
    args = parser.parse_args()
    try:
        weightings = [check_weighting(w) for w in args.weightings.split(",")]
    except ValueError as exc:
        parser.error(f"--weightings: {exc}")

    model = load_model(args.model, device="cpu")
    known = set(model.labels)
    with open(args.manifest, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == args.split]
    unknown = sum(1 for r in rows if r["label"] not in known)
    rows = [r for r in rows if r["label"] in known]
    clips, kept = [], []
    for row in rows:
        try:
            clips.append(load_audio(args.manifest.parent / row["path"], model.sample_rate_hz))
            kept.append(row)
        except AudioFileError as exc:
            print(f"skipped {exc}", file=sys.stderr)
    ids = [manifest_clip_id(r["path"]) for r in kept]
    groups = [source_group(r) for r in kept]
    overall = dict.fromkeys(ids, "all")

    results: list[dict[str, Any]] = []
    reference: np.ndarray | None = None
    for kind, precision in parse_engines(args.engines):
        engine = create_engine(model, kind, precision)
        per_clip = [clip_probabilities(engine, clip, args.step_samples, weightings) for clip in clips]
        for index, weighting in enumerate(weightings):
            probs = np.stack([combined[index] for combined in per_clip])
            predictions = PredictionSet(
                name=f"{kind}:{precision}",
                clip_ids=tuple(ids),
                labels=tuple(r["label"] for r in kept),
                usages=(None,) * len(kept),
                ranked=tuple(map(tuple, top_k(probs, model.labels, 3))),
            )
            figures: dict[str, Any] = {"engine": predictions.name, "weighting": weighting, "runs_on": engine.name}
            scores = {**group_scores(predictions, overall), **group_scores(predictions, dict(zip(ids, groups)))}
            for name, group in scores.items():
                figures[f"map3 {name}"], figures[f"top1 {name}"] = group["map3"], group["top1"]
            if reference is None:
                reference, reference_map3 = probs, figures["map3 all"]
                if args.confusion is not None:
                    args.confusion.mkdir(parents=True, exist_ok=True)
                    for path in plot_group_confusions(predictions, dict(zip(ids, groups)), args.confusion):
                        print(f"wrote {path}")
            figures["map3 change"] = figures["map3 all"] - reference_map3
            figures["top1 agreement"] = float(np.mean(probs.argmax(axis=1) == reference.argmax(axis=1)))
            figures["max prob diff"] = float(np.abs(probs - reference).max())
            results.append(figures)

    print(f"{len(kept)} clips of split {args.split!r} ({groups.count(RENDERS)} renders, "
          f"{groups.count(REAL)} real); {unknown} with labels the model does not know left out; "
          f"step {args.step_samples} samples")
    columns = ["engine", "weighting", "map3 all", f"map3 {RENDERS}", f"map3 {REAL}", "top1 all", "map3 change", "top1 agreement",
               "max prob diff"]
    print(" | ".join(columns))
    for figures in results:
        print(" | ".join(f"{figures[c]:.4f}" if isinstance(figures.get(c), float) else str(figures.get(c, "-"))
                         for c in columns))
    if args.json is not None:
        args.json.write_text(json.dumps({"clips": len(kept), "unknown_labels": unknown, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
