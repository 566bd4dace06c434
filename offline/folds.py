"""Stratified folds: every training clip validates exactly one fold model (workshop paper, 2.5)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold

__all__ = ["assign_folds"]


def assign_folds(labels: Sequence[str], num_folds: int, seed: int = 0, predefined: Sequence[int | None] | None = None) -> np.ndarray:
    """Fold number (0..num_folds-1) of every training clip.

    Args:
        labels: class name of each training clip.
        num_folds: number of folds (5 in the papers).
        seed: shuffling seed of the stratified split (default 0).
        predefined: optional fold per clip (from a manifest's ``fold`` column); when every entry
            is set, these are used as they are.

    Returns:
        An int64 array, one fold per clip. Class proportions are kept in every fold as far as
        the class sizes allow (a class with fewer clips than folds misses some folds).

    Raises:
        ValueError: if predefined folds are only partly given or are not exactly
            0..num_folds-1, or if there are fewer clips than folds.
    """
    if predefined is not None and any(f is not None for f in predefined):
        if any(f is None for f in predefined):
            raise ValueError("the manifest gives a fold for some training clips but not for all")
        folds = np.asarray(predefined, dtype=np.int64)
        found = sorted(set(folds.tolist()))
        if found != list(range(num_folds)):
            raise ValueError(
                f"the manifest's training clips have folds {found}; train.num_folds={num_folds} needs "
                f"every fold 0..{num_folds - 1} (set train.num_folds to match the manifest)"
            )
        return folds
    if len(labels) < num_folds:
        raise ValueError(f"{len(labels)} training clips cannot fill {num_folds} folds")
    splitter = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    folds = np.empty(len(labels), dtype=np.int64)
    with warnings.catch_warnings():
        # Small classes (fewer clips than folds) are allowed; sklearn warns about them.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, val_index) in enumerate(splitter.split(np.zeros(len(labels)), np.asarray(labels))):
            folds[val_index] = fold
    return folds
