"""PNG figures of a run: training curves, per-class mAP@3 bars, and the confusion matrix."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from offline.config import STAGES  # noqa: E402
from offline.run_layout import RunLayout  # noqa: E402

__all__ = ["plot_confusion_matrix", "plot_per_class", "plot_training_curves"]


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_training_curves(layout: RunLayout, path: Path) -> Path:
    """Training and validation loss per epoch, one panel per stage, one line pair per fold."""
    fig, axes = plt.subplots(1, len(STAGES), figsize=(5 * len(STAGES), 3.5), squeeze=False)
    for ax, stage in zip(axes[0], STAGES):
        for metrics in sorted((layout.root / stage).glob("fold*/metrics.jsonl")):
            rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
            epochs = [r["epoch"] for r in rows]
            fold = metrics.parent.name
            ax.plot(epochs, [r["train_loss"] for r in rows], label=f"{fold} train")
            ax.plot(epochs, [r["val_loss"] for r in rows], linestyle="--", label=f"{fold} val")
        ax.set_title(f"cnn-{stage}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("weighted cross-entropy")
        if ax.lines:
            ax.legend(fontsize="x-small")
    return _save(fig, path)


def plot_per_class(scores: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Grouped bars of per-class mAP@3, one group per class and one bar per model (Figure 2 style)."""
    classes = sorted({c for s in scores.values() for c in s})
    width = 0.8 / max(len(scores), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(classes) * max(len(scores), 1)), 4))
    x = np.arange(len(classes))
    for i, (name, s) in enumerate(scores.items()):
        ax.bar(x + i * width, [s.get(c, np.nan) for c in classes], width, label=name)
    ax.set_xticks(x + 0.4 - width / 2)
    ax.set_xticklabels(classes, rotation=60, ha="right", fontsize="small")
    ax.set_ylabel("mAP@3")
    ax.set_ylim(0.0, 1.05)
    ax.legend(fontsize="x-small")
    return _save(fig, path)


def plot_confusion_matrix(actual: Sequence[str], predicted: Sequence[str], labels: Sequence[str], path: Path) -> Path:
    """Row-normalised confusion matrix of true class against top-1 prediction."""
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.float64)
    for a, p in zip(actual, predicted):
        if a in index and p in index:
            counts[index[a], index[p]] += 1
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.25 * len(labels))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)))
    ax.set_yticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90, fontsize="x-small")
    ax.set_yticklabels(labels, fontsize="x-small")
    ax.set_xlabel("predicted (top 1)")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)
