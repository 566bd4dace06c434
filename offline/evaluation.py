"""``evaluate``: Table 3, Table 4, the Figure 2 ablation, a Kaggle submission and plots.

Reads every prediction set in ``<run_dir>/predictions/`` and writes ``<run_dir>/report/``:

* ``results.json`` and ``results.md``: mAP@3 of each prediction set on the Public, Private and
  full test set (Table 3), the per-class table of the primary set (Table 4: name, training
  clips, training minutes, mAP@3) and, when the ablation sets exist, the per-class comparison of
  Figure 2 (cnn-audio, cnn-spec, cnn-comb with spectrogram input zeroed, with audio zeroed, and
  cnn-comb).
* out-of-fold validation mAP@3 per fold (min, max, avg: the technical report's Table 1) for every
  ``<stage>_val`` set written by ``predict --validation``.
* ``submission.csv``: ``fname,label`` with the three best labels of the primary set separated
  by spaces (the Kaggle format).
* ``training_curves.png``, ``per_class.png``, ``confusion_matrix.png``.

The primary set is ``comb`` when present, else the last stage that has predictions.
mAP@3 is computed from the ranked labels in the prediction CSVs, i.e. from what the models wrote.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from offline.checkpoint import atomic_write_bytes
from offline.config import STAGES, ExperimentConfig
from offline.metrics import mean_average_precision_at_k, per_class_map_at_k
from offline.plots import plot_confusion_matrix, plot_per_class, plot_training_curves
from offline.preprocess import load_index
from offline.run_layout import RunLayout

__all__ = [
    "PredictionSet",
    "evaluate_run",
    "fold_scores",
    "format_table3",
    "group_scores",
    "read_prediction_set",
    "split_scores",
]

VALIDATION_SUFFIX = "_val"
ABLATION_ORDER: tuple[tuple[str, str], ...] = (
    ("audio", "cnn-audio"),
    ("spec", "cnn-spec"),
    ("comb_zero-spec", "cnn-comb (spec input set to 0)"),
    ("comb_zero-audio", "cnn-comb (audio input set to 0)"),
    ("comb", "cnn-comb"),
)


@dataclasses.dataclass(frozen=True)
class PredictionSet:
    """The rows of one ``predictions/<name>.csv``.

    Attributes:
        name: file stem (``audio``, ``spec``, ``comb``, ``comb_zero-audio``, ...).
        clip_ids, labels, usages: per clip; ``labels[i]``/``usages[i]`` are ``None`` when unknown.
        ranked: the (up to) three predicted labels per clip, best first.
    """

    name: str
    clip_ids: tuple[str, ...]
    labels: tuple[str | None, ...]
    usages: tuple[str | None, ...]
    ranked: tuple[tuple[str, ...], ...]


def read_prediction_set(path: Path) -> PredictionSet:
    """Read a prediction CSV written by :func:`offline.prediction.write_predictions`."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return PredictionSet(
        name=path.stem,
        clip_ids=tuple(r["clip_id"] for r in rows),
        labels=tuple(r["label"] or None for r in rows),
        usages=tuple(r["usage"] or None for r in rows),
        ranked=tuple(tuple(p for p in (r["pred1"], r["pred2"], r["pred3"]) if p) for r in rows),
    )


def split_scores(predictions: PredictionSet) -> dict[str, Any]:
    """mAP@3 on the Public, Private and full (labelled) test set, with clip counts.

    A part without clips is ``None``.
    """
    scores: dict[str, Any] = {}
    for part, keep in (("public", "Public"), ("private", "Private"), ("full", None)):
        rows = [
            (p, a)
            for p, a, u in zip(predictions.ranked, predictions.labels, predictions.usages)
            if a is not None and (keep is None or u == keep)
        ]
        scores[part] = mean_average_precision_at_k([p for p, _ in rows], [a for _, a in rows]) if rows else None
        scores[f"{part}_clips"] = len(rows)
    return scores


def fold_scores(predictions: PredictionSet) -> dict[str, Any]:
    """mAP@3 of out-of-fold predictions per fold (the fold is in the ``usage`` column), with the
    minimum, maximum and average over folds (the technical report's validation columns)."""
    per_fold: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for ranked, actual, fold in zip(predictions.ranked, predictions.labels, predictions.usages):
        if actual is not None:
            per_fold.setdefault(fold or "fold?", []).append((ranked, actual))
    scores = {
        fold: mean_average_precision_at_k([p for p, _ in rows], [a for _, a in rows]) for fold, rows in sorted(per_fold.items())
    }
    values = list(scores.values())
    return {
        "per_fold": scores,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "avg": sum(values) / len(values) if values else None,
    }


def group_scores(predictions: PredictionSet, group_of: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """mAP@3 and top-1 accuracy of the labelled clips of each group, overall and per class.

    Args:
        predictions: a prediction set.
        group_of: clip id -> group name; clips not in it are left out.

    Returns:
        ``{group: {"clips", "map3", "top1", "per_class": {label: {"clips", "map3", "top1"}}}}``,
        groups in order of first appearance in ``group_of``'s values.
    """
    rows: dict[str, list[tuple[tuple[str, ...], str]]] = {name: [] for name in dict.fromkeys(group_of.values())}
    for clip_id, ranked, actual in zip(predictions.clip_ids, predictions.ranked, predictions.labels):
        if actual is not None and clip_id in group_of:
            rows[group_of[clip_id]].append((ranked, actual))

    def scores(pairs: Sequence[tuple[tuple[str, ...], str]]) -> dict[str, Any]:
        return {
            "clips": len(pairs),
            "map3": mean_average_precision_at_k([p for p, _ in pairs], [a for _, a in pairs]),
            "top1": sum(1 for p, a in pairs if p and p[0] == a) / len(pairs),
        }

    result: dict[str, dict[str, Any]] = {}
    for name, pairs in rows.items():
        if not pairs:
            continue
        by_class: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for pair in pairs:
            by_class.setdefault(pair[1], []).append(pair)
        result[name] = {**scores(pairs), "per_class": {c: scores(v) for c, v in sorted(by_class.items())}}
    return result


def _per_class(predictions: PredictionSet) -> dict[str, float]:
    rows = [(p, a) for p, a in zip(predictions.ranked, predictions.labels) if a is not None]
    return per_class_map_at_k([p for p, _ in rows], [a for _, a in rows])


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _markdown(
    name: str,
    table3: dict[str, dict[str, Any]],
    table4: list[dict[str, Any]],
    primary: str | None,
    ablation: dict[str, dict[str, float]],
    validation: dict[str, dict[str, Any]],
) -> str:
    lines = [f"# Results of {name}", ""]
    if validation:
        lines += ["## Out-of-fold validation mAP@3 (technical report, Table 1)", ""]
        lines += ["| model | min | max | avg | per fold |", "|---|---:|---:|---:|---|"]
        for set_name, v in validation.items():
            folds = ", ".join(f"{fold} {_fmt(score)}" for fold, score in v["per_fold"].items())
            lines.append(f"| {set_name} | {_fmt(v['min'])} | {_fmt(v['max'])} | {_fmt(v['avg'])} | {folds} |")
        lines.append("")
    lines += ["## mAP@3 on the test set (Table 3)", ""]
    lines += ["| model | Public | Private | full | clips |", "|---|---:|---:|---:|---:|"]
    for set_name, s in table3.items():
        lines.append(f"| {set_name} | {_fmt(s['public'])} | {_fmt(s['private'])} | {_fmt(s['full'])} | {s['full_clips']} |")
    lines += ["", f"## Per-class mAP@3 of {primary} on the full test set (Table 4)", ""]
    lines += ["| Name | train samples | train minutes | mAP@3 |", "|---|---:|---:|---:|"]
    for row in table4:
        lines.append(f"| {row['name']} | {row['train_samples']} | {row['train_minutes']:.1f} | {_fmt(row['map3'])} |")
    if ablation:
        lines += ["", "## Zeroed-input ablation, per class (Figure 2)", ""]
        names = list(ablation)
        lines += ["| class | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        classes = sorted({c for scores in ablation.values() for c in scores})
        for cls in classes:
            lines.append(f"| {cls} | " + " | ".join(_fmt(ablation[n].get(cls)) for n in names) + " |")
    return "\n".join(lines) + "\n"


def _submission(predictions: PredictionSet) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("fname", "label"))
    writer.writerows((clip_id, " ".join(ranked)) for clip_id, ranked in zip(predictions.clip_ids, predictions.ranked))
    return text.getvalue().encode("utf-8")


def evaluate_run(cfg: ExperimentConfig, plots: bool = True) -> dict[str, Any]:
    """Score every prediction set of the run and write the report (see the module docstring).

    Args:
        cfg: the experiment config.
        plots: also draw the PNG figures (default true).

    Returns:
        The content of ``results.json``.

    Raises:
        FileNotFoundError: if the run has no prediction sets (names the folder).
    """
    layout = RunLayout(Path(cfg.run_dir))
    paths = sorted(layout.predictions_dir.glob("*.csv"))
    if not paths:
        raise FileNotFoundError(f"{layout.predictions_dir}: no predictions; run `python -m offline predict` first")
    order = [name for name, _ in ABLATION_ORDER]
    paths.sort(key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.stem))
    all_sets = {p.stem: read_prediction_set(p) for p in paths}
    sets = {name: s for name, s in all_sets.items() if not name.endswith(VALIDATION_SUFFIX)}
    validation = {name: fold_scores(s) for name, s in all_sets.items() if name.endswith(VALIDATION_SUFFIX)}
    primary = "comb" if "comb" in sets else next((s for s in reversed(STAGES) if s in sets), next(iter(sets), None))
    table3 = {name: split_scores(s) for name, s in sets.items() if any(a is not None for a in s.labels)}

    train = [c for c in load_index(cfg.data.cache_dir) if c.split == "train" and c.label is not None]
    per_class = _per_class(sets[primary]) if primary in table3 else {}
    labels = layout.read_labels()
    table4 = [
        {
            "name": label,
            "train_samples": sum(1 for c in train if c.label == label),
            "train_minutes": sum(c.raw_samples for c in train if c.label == label) / cfg.model.sample_rate_hz / 60.0,
            "map3": per_class.get(label),
        }
        for label in labels
    ]
    ablation = {title: _per_class(sets[name]) for name, title in ABLATION_ORDER if name in table3}
    if len(ablation) < 2:
        ablation = {}
    results: dict[str, Any] = {
        "run": cfg.name,
        "primary": primary,
        "table3": table3,
        "table4": table4,
        "ablation_per_class": ablation,
        "validation": validation,
    }
    report = layout.report_dir
    atomic_write_bytes(report / "results.json", json.dumps(results, indent=2).encode("utf-8"))
    markdown = _markdown(cfg.name, table3, table4, primary, ablation, validation)
    atomic_write_bytes(report / "results.md", markdown.encode("utf-8"))
    if primary is not None:
        atomic_write_bytes(report / "submission.csv", _submission(sets[primary]))
    if plots:
        plot_training_curves(layout, report / "training_curves.png")
        if primary is not None and per_class:
            plot_per_class(ablation or {primary: per_class}, report / "per_class.png")
            scored = [(a, p[0]) for a, p in zip(sets[primary].labels, sets[primary].ranked) if a is not None and p]
            plot_confusion_matrix([a for a, _ in scored], [p for _, p in scored], labels, report / "confusion_matrix.png")
    return results


def format_table3(results: dict[str, Any], names: Sequence[str] | None = None) -> str:
    """One line per prediction set: ``name  public  private  full`` (for the terminal)."""
    rows = []
    for name, s in results["table3"].items():
        if names is None or name in names:
            rows.append(f"{name:<18} public {_fmt(s['public'])}  private {_fmt(s['private'])}  full {_fmt(s['full'])}")
    return "\n".join(rows)
