"""Stratified folds, and folds given by a manifest."""

from __future__ import annotations

import numpy as np
import pytest

from offline.folds import assign_folds


def test_every_clip_validates_once_and_classes_are_spread_over_folds() -> None:
    labels = ["a"] * 50 + ["b"] * 25 + ["c"] * 10
    folds = assign_folds(labels, 5, seed=3)
    assert folds.shape == (85,) and set(folds.tolist()) == set(range(5))
    for label, size in (("a", 10), ("b", 5), ("c", 2)):
        members = folds[np.array(labels) == label]
        assert np.bincount(members, minlength=5).tolist() == [size] * 5
    np.testing.assert_array_equal(folds, assign_folds(labels, 5, seed=3))
    assert not np.array_equal(folds, assign_folds(labels, 5, seed=4))


def test_manifest_folds_are_used_as_given_and_must_cover_every_fold() -> None:
    np.testing.assert_array_equal(assign_folds(["a", "b", "a"], 2, predefined=[1, 0, 0]), [1, 0, 0])
    with pytest.raises(ValueError, match="set train.num_folds to match the manifest"):
        assign_folds(["a", "b", "a"], 3, predefined=[1, 0, 0])
    with pytest.raises(ValueError, match="some training clips but not for all"):
        assign_folds(["a", "b"], 2, predefined=[1, None])
    with pytest.raises(ValueError, match="cannot fill 5 folds"):
        assign_folds(["a", "b"], 5)
