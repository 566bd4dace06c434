"""``corpus-report``: held-out figures of a model trained on the corpus, by kind of source.

    python -m offline corpus-report configs/train/corpus_2s.yaml [--name comb]

The corpus holds out whole sources (docs/corpus.md): the TimGM6mb renders and a source-disjoint
part of the real recordings. This command scores a prediction set of the held-out clips
(``python -m offline predict``) separately on the two, with mAP@3 and top-1 accuracy overall and
per class, then the real recordings by origin (``us8k``, ``covid19-cough``, ``weresax``, ...), and
the false positives on held-out ``_other`` clips (a class ranked above ``_other``). It writes
``report/heldout.md``, ``report/heldout.json`` and one top-1 confusion matrix per group
(``report/heldout_confusion_renders.png``, ``..._real.png``) in the run folder.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from offline.checkpoint import atomic_write_bytes
from offline.commands.arguments import add_experiment_arguments, experiment_from_args
from offline.config import ExperimentConfig
from offline.datasets import manifest_clip_id
from offline.evaluation import PredictionSet, group_scores, read_prediction_set
from offline.plots import plot_confusion_matrix
from offline.run_layout import RunLayout

__all__ = ["REAL", "RENDERS", "heldout_groups", "heldout_origins", "heldout_report", "plot_group_confusions", "register", "run", "source_group"]

RENDERS = "TimGM6mb renders"
REAL = "real recordings"
CONFUSION_FILES = {RENDERS: "heldout_confusion_renders.png", REAL: "heldout_confusion_real.png"}
OTHER_LABEL = "_other"


def source_group(row: Mapping[str, str]) -> str:
    """:data:`RENDERS` for a rendered manifest row, :data:`REAL` for a recording."""
    return RENDERS if row["quality"] == "rendered" else REAL


def _heldout_rows(manifest: Path, columns: set[str]) -> list[dict[str, str]]:
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"path", "split", *columns} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{manifest}: not a corpus manifest (no {', '.join(sorted(missing))} column)")
    return [row for row in rows if row["split"] == "heldout"]


def heldout_groups(manifest: Path) -> dict[str, str]:
    """Clip id -> :data:`RENDERS` or :data:`REAL` for every held-out clip of a corpus manifest."""
    return {manifest_clip_id(row["path"]): source_group(row) for row in _heldout_rows(manifest, {"quality"})}


def heldout_origins(manifest: Path) -> dict[str, str]:
    """Clip id -> origin (the first part of ``source``: ``us8k``, ``weresax``, ...) for every
    held-out real recording of a corpus manifest."""
    return {
        manifest_clip_id(row["path"]): row["source"].split("/")[0]
        for row in _heldout_rows(manifest, {"quality", "source"})
        if source_group(row) == REAL
    }


def _other_false_positives(predictions: PredictionSet, group_of: Mapping[str, str]) -> dict[str, Any]:
    """Held-out ``_other`` clips on which a class is ranked first, with the classes that were."""
    firsts = [r[0] for r, a, c in zip(predictions.ranked, predictions.labels, predictions.clip_ids)
              if a == OTHER_LABEL and c in group_of and r]
    wrong = Counter(label for label in firsts if label != OTHER_LABEL)
    return {"clips": len(firsts), "class_first": sum(wrong.values()), "classes": dict(wrong.most_common())}


def plot_group_confusions(predictions: PredictionSet, group_of: Mapping[str, str], report_dir: Path) -> list[Path]:
    """One top-1 confusion matrix per held-out group (renders, real) that has clips; the files written."""
    written = []
    for group, filename in CONFUSION_FILES.items():
        pairs = [(a, r[0]) for r, a, c in zip(predictions.ranked, predictions.labels, predictions.clip_ids)
                 if a is not None and r and group_of.get(c) == group]
        if pairs:
            labels = sorted({a for a, _ in pairs} | {p for _, p in pairs})
            actual, predicted = zip(*pairs)
            written.append(plot_confusion_matrix(actual, predicted, labels, report_dir / filename))
    return written


def heldout_report(cfg: ExperimentConfig, name: str = "comb") -> dict[str, Any]:
    """Score ``predictions/<name>.csv`` of the run on each held-out group; write the report files.

    Raises:
        FileNotFoundError: if the prediction set does not exist (names the file).
    """
    layout = RunLayout(Path(cfg.run_dir))
    path = layout.predictions_dir / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such prediction set; run `python -m offline predict` first")
    predictions = read_prediction_set(path)
    group_of = heldout_groups(Path(cfg.data.root))
    results = {
        "run": cfg.name,
        "predictions": name,
        "groups": group_scores(predictions, group_of),
        "real_by_origin": group_scores(predictions, heldout_origins(Path(cfg.data.root))),
        "other_false_positives": _other_false_positives(predictions, group_of),
    }
    plot_group_confusions(predictions, group_of, layout.report_dir)
    atomic_write_bytes(layout.report_dir / "heldout.json", json.dumps(results, indent=2).encode("utf-8"))
    atomic_write_bytes(layout.report_dir / "heldout.md", format_heldout(results).encode("utf-8"))
    return results


def format_heldout(results: dict[str, Any]) -> str:
    """The held-out tables as Markdown: one summary table, then per class for each group."""
    groups = results["groups"]
    lines = [f"# Held-out results of {results['run']} ({results['predictions']})", ""]
    lines += ["| held-out set | clips | mAP@3 | top-1 |", "|---|---:|---:|---:|"]
    lines += [f"| {g} | {s['clips']} | {s['map3']:.3f} | {s['top1']:.3f} |" for g, s in groups.items()]
    other = results.get("other_false_positives", {})
    if other.get("clips"):
        named = ", ".join(f"{label} {count}" for label, count in other["classes"].items())
        lines += ["", f"False positives: a class ranked first on {other['class_first']} of the {other['clips']} "
                      f"held-out `{OTHER_LABEL}` clips" + (f" ({named})." if named else ".")]
    origins = results.get("real_by_origin", {})
    if origins:
        lines += ["", "## Real recordings by origin", "", "| origin | clips | mAP@3 | top-1 |", "|---|---:|---:|---:|"]
        lines += [f"| {o} | {s['clips']} | {s['map3']:.3f} | {s['top1']:.3f} |" for o, s in origins.items()]
    for group, scores in groups.items():
        lines += ["", f"## {group}, per class", "", "| class | clips | mAP@3 | top-1 |", "|---|---:|---:|---:|"]
        lines += [
            f"| {c} | {s['clips']} | {s['map3']:.3f} | {s['top1']:.3f} |" for c, s in scores["per_class"].items()
        ]
    return "\n".join(lines) + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``corpus-report`` sub-command."""
    parser = subparsers.add_parser(
        "corpus-report", help="held-out mAP@3 and top-1 of a corpus-trained model, renders and real clips apart",
        description="Score the held-out predictions of a corpus-trained model: mAP@3 and top-1 for real recordings "
                    "and renders apart, with a top-1 confusion matrix plot of each (report/ in the run folder).",
    )
    add_experiment_arguments(parser)
    parser.add_argument("--name", default="comb", help="prediction set to score (default comb)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the held-out report and print its summary table."""
    cfg = experiment_from_args(args)
    results = heldout_report(cfg, args.name)
    print(format_heldout(results).split("\n## ")[0].rstrip())
    print(f"report in {RunLayout(Path(cfg.run_dir)).report_dir}")
    return 0
