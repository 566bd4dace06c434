"""The corpus manifest (``manifest.csv``), its cross-validation folds, and the ``corpus.json`` summary."""

from __future__ import annotations

import csv
import json
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from offline.corpus.build import RENDER_QUALITY, Row

MANIFEST_COLUMNS = ("path", "label", "split", "source", "license", "quality", "fold")


def assign_folds(rows: Sequence[Row], folds: int, seed: int) -> dict[str, int]:
    """Stratified, grouped folds over the ``train`` rows: path -> fold in ``0..folds-1``.

    Real clips are grouped by recording source, so one source stays in one fold; each rendered
    clip is its own group (grouping renders by font and program would leave most classes with
    fewer groups than folds). With fewer groups (or fewer clips in the largest class) than
    ``folds`` the count drops to that number; below two every row gets fold 0.
    """
    train = [row for row in rows if row.split == "train"]
    if not train:
        return {}
    groups = [row.path if row.quality == RENDER_QUALITY else row.source for row in train]
    labels = [row.label for row in train]
    splits = min(folds, len(set(groups)), max(Counter(labels).values()))
    if splits < 2:
        return {row.path: 0 for row in train}
    splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    assignment: dict[str, int] = {}
    with warnings.catch_warnings():
        # a label with fewer clips (or sources) than folds is simply absent from some folds
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, test_index) in enumerate(splitter.split(np.zeros(len(train)), labels, groups)):
            for i in test_index:
                assignment[train[i].path] = fold
    return assignment


def write_manifest(rows: Sequence[Row], folds: Mapping[str, int], path: Path) -> None:
    """Write ``manifest.csv`` (columns ``MANIFEST_COLUMNS``; fold empty for held-out rows),
    rows sorted by split, label and path."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for row in sorted(rows, key=lambda r: (r.split != "train", r.label, r.path)):
            fold = folds.get(row.path, "") if row.split == "train" else ""
            writer.writerow((row.path, row.label, row.split, row.source, row.license, row.quality, fold))


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a corpus ``manifest.csv`` as dictionaries."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def summarise(rows: Sequence[Row], folds: Mapping[str, int]) -> dict[str, object]:
    """Counts and durations per label and split, per origin (font or real source family), and
    clips per fold."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, Counter[str]] = defaultdict(Counter)
    origins: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        counts[row.label][row.split] += 1
        durations[row.label][row.split] += row.duration_s
        origin = row.source.split("/", 1)[0]
        origins[origin if row.quality == RENDER_QUALITY else f"real:{origin}"][row.split] += 1
    totals: Counter[str] = Counter(row.split for row in rows)
    total_durations: Counter[str] = Counter()
    for row in rows:
        total_durations[row.split] += row.duration_s
    return {
        "clips": {split: totals[split] for split in ("train", "heldout")},
        "duration_s": {split: round(total_durations[split], 1) for split in ("train", "heldout")},
        "per_label": {
            label: {split: {"clips": counts[label][split], "duration_s": round(durations[label][split], 1)}
                    for split in ("train", "heldout")}
            for label in sorted(counts)
        },
        "per_origin": {origin: dict(sorted(c.items())) for origin, c in sorted(origins.items())},
        "clips_per_fold": dict(sorted(Counter(folds.values()).items())),
    }


def write_summary(summary: Mapping[str, object], path: Path) -> None:
    """Write ``corpus.json`` (sorted keys, two-space indent)."""
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
