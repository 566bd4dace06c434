"""mAP@3, the DCASE 2018 Task 2 metric, and its per-class breakdown.

For U clips with one true label each and up to three ranked predictions,

    mAP@3 = 1/U * sum_i sum_{j <= min(3, n_i)} [y_ij == yhat_i] / j

(workshop paper, section 3.2). No label may count twice: a repeated prediction earns nothing at
its later positions (as in the challenge's scorer), so a clip scores ``1/j`` for the first
position ``j <= 3`` holding its label and 0 otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["average_precision_at_k", "mean_average_precision_at_k", "per_class_map_at_k", "top_k"]


def average_precision_at_k(predicted: Sequence[str], actual: str, k: int = 3) -> float:
    """Precision credit of one clip: ``1/j`` for the first of the top ``k`` predictions equal to
    ``actual`` (``j`` counted from 1, repeats included), 0 if none is."""
    seen: set[str] = set()
    for position, label in enumerate(predicted[:k], start=1):
        if label == actual and label not in seen:
            return 1.0 / position
        seen.add(label)
    return 0.0


def mean_average_precision_at_k(predicted: Sequence[Sequence[str]], actual: Sequence[str], k: int = 3) -> float:
    """mAP@k over clips; ``predicted[i]`` is the ranked list for the clip labelled ``actual[i]``.

    Raises:
        ValueError: if the lists differ in length or are empty.
    """
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} prediction lists for {len(actual)} labels")
    if not actual:
        raise ValueError("mAP@k of no clips is undefined")
    return float(np.mean([average_precision_at_k(p, a, k) for p, a in zip(predicted, actual)]))


def per_class_map_at_k(predicted: Sequence[Sequence[str]], actual: Sequence[str], k: int = 3) -> dict[str, float]:
    """mAP@k of the clips of each true class (Table 4), keyed by class name."""
    scores: dict[str, list[float]] = {}
    for p, a in zip(predicted, actual):
        scores.setdefault(a, []).append(average_precision_at_k(p, a, k))
    return {label: float(np.mean(values)) for label, values in sorted(scores.items())}


def top_k(probs: np.ndarray, labels: Sequence[str], k: int = 3) -> list[list[str]]:
    """The ``k`` most probable labels of every row of ``probs`` [U, C], best first (distinct)."""
    order = np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :k]
    return [[labels[c] for c in row] for row in order]
