"""mAP@3 against hand-computed cases (workshop paper, section 3.2)."""

from __future__ import annotations

import numpy as np
import pytest

from offline.metrics import average_precision_at_k, mean_average_precision_at_k, per_class_map_at_k, top_k


@pytest.mark.parametrize(
    ("predicted", "expected"),
    [
        (["a", "b", "c"], 1.0),
        (["b", "a", "c"], 0.5),
        (["b", "c", "a"], 1 / 3),
        (["b", "c", "d"], 0.0),
        (["b", "c", "d", "a"], 0.0),  # only the first three count
        (["b", "a"], 0.5),  # fewer than three predictions
        (["a"], 1.0),
        ([], 0.0),
        (["b", "b", "a"], 1 / 3),  # a repeated wrong label still takes its position
        (["a", "a", "a"], 1.0),  # a repeated right label earns nothing more
        (["b", "a", "a"], 0.5),
    ],
)
def test_average_precision_gives_one_over_the_first_correct_position(predicted: list[str], expected: float) -> None:
    assert average_precision_at_k(predicted, "a") == pytest.approx(expected)


def test_mean_over_clips_matches_hand_computation() -> None:
    predicted = [["dog", "cat", "bus"], ["cat", "dog", "bus"], ["bus", "bus", "dog"], ["cat"], ["bus", "cat", "dog"]]
    actual = ["dog", "dog", "dog", "dog", "cat"]
    # 1 + 1/2 + 1/3 + 0 + 1/2 over 5 clips
    assert mean_average_precision_at_k(predicted, actual) == pytest.approx((1 + 0.5 + 1 / 3 + 0 + 0.5) / 5)
    assert per_class_map_at_k(predicted, actual) == pytest.approx({"cat": 0.5, "dog": (1 + 0.5 + 1 / 3) / 4})


def test_mean_rejects_mismatched_or_empty_inputs() -> None:
    with pytest.raises(ValueError, match="2 prediction lists for 1 labels"):
        mean_average_precision_at_k([["a"], ["b"]], ["a"])
    with pytest.raises(ValueError, match="undefined"):
        mean_average_precision_at_k([], [])


def test_top_k_ranks_distinct_labels_by_probability() -> None:
    probs = np.array([[0.1, 0.6, 0.2, 0.1], [0.7, 0.05, 0.05, 0.2]])
    assert top_k(probs, ["a", "b", "c", "d"], 3) == [["b", "c", "a"], ["a", "d", "b"]]
