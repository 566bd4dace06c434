"""The papers' augmentation: crops, replicated padding, shifts and mixing with soft targets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.augment import Augmenter, fit_to_window, mixing_weights, time_shift
from offline.config import AugmentConfig


@given(length=st.integers(1, 5000), window=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_fit_to_window_keeps_the_clip_and_the_window_length(length: int, window: int, seed: int) -> None:
    clip = np.arange(1, length + 1, dtype=np.float32)  # no zeros in the clip
    out = fit_to_window(clip, window, np.random.default_rng(seed))
    assert out.shape == (window,)
    if length >= window:
        start = int(out[0]) - 1  # a contiguous crop inside the clip
        assert 0 <= start <= length - window
        np.testing.assert_array_equal(out, clip[start : start + window])
    else:
        nonzero = np.flatnonzero(out)
        copies = nonzero.size // length
        assert nonzero.size == copies * length and 1 <= copies <= window // length
        # every copy is complete and in order
        runs = np.split(out[nonzero], copies)
        for run in runs:
            np.testing.assert_array_equal(run, clip)


def test_short_clip_is_replicated_k_times_with_probability_one_over_n() -> None:
    rng = np.random.default_rng(1234)
    clip = np.ones(100, dtype=np.float32)
    window = 450  # fits n = 4 times
    trials = 8000
    counts = np.bincount([int(fit_to_window(clip, window, rng).sum()) // 100 for _ in range(trials)], minlength=5)
    assert counts[0] == 0
    # each k in 1..4 has probability 1/4: 2000 expected, binomial sd ~39
    np.testing.assert_allclose(counts[1:] / trials, 0.25, atol=0.02)


def test_replication_off_places_one_copy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert fit_to_window(np.ones(100, np.float32), 450, rng, replicate=False).sum() == 100


def test_zero_gaps_are_spread_before_between_and_after() -> None:
    rng = np.random.default_rng(7)
    clip = np.ones(10, dtype=np.float32)
    starts_first, ends_last = [], []
    for _ in range(500):
        nonzero = np.flatnonzero(fit_to_window(clip, 100, rng))
        starts_first.append(nonzero[0])
        ends_last.append(nonzero[-1])
    assert min(starts_first) == 0 and max(starts_first) > 50
    assert max(ends_last) == 99 and min(ends_last) < 50


def test_time_shift_is_a_rotation_with_uniform_offset() -> None:
    rng = np.random.default_rng(3)
    clip = np.arange(50, dtype=np.float32)
    offsets = []
    for _ in range(2000):
        shifted = time_shift(clip, rng)
        offset = int(np.flatnonzero(shifted == 0)[0])
        np.testing.assert_array_equal(shifted, np.roll(clip, offset))
        offsets.append(offset)
    counts = np.bincount(offsets, minlength=50)
    assert counts.min() > 10 and counts.max() < 80  # uniform: 40 expected per offset


@given(count=st.integers(2, 6), alpha=st.floats(0.1, 5.0), seed=st.integers(0, 2**32 - 1))
def test_mixing_weights_are_non_negative_and_sum_to_one(count: int, alpha: float, seed: int) -> None:
    weights = mixing_weights(count, alpha, np.random.default_rng(seed))
    assert weights.shape == (count,) and np.all(weights >= 0)
    assert weights.sum() == pytest.approx(1.0)


def _augmenter(config: AugmentConfig, lengths: list[int], classes: list[int]) -> Augmenter:
    content = np.random.default_rng(99)
    clips = [content.uniform(-0.5, 0.5, n).astype(np.float32) for n in lengths]
    return Augmenter(lambda i: clips[i], classes, num_classes=4, window_samples=300, config=config)


def test_different_class_mixing_gives_soft_targets_of_the_weights() -> None:
    config = AugmentConfig(same_class_mix_prob=0.0, diff_class_mix_prob=1.0, max_mix_clips=3)
    augmenter = _augmenter(config, [400, 200, 500, 120, 300], [0, 1, 2, 3, 0])
    rng = np.random.default_rng(5)
    mixed_sizes = set()
    for index in range(5):
        for _ in range(40):
            audio, target = augmenter.example(index, rng)
            assert audio.shape == (300,) and np.all(np.isfinite(audio))
            assert target.sum() == pytest.approx(1.0, abs=1e-6) and np.all(target >= 0)
            assert 0 < target[augmenter.class_ids[index]] < 1  # the clip's own class shares the target
            mixed_sizes.add(int(np.count_nonzero(target)))
    assert mixed_sizes == {2, 3}


def test_same_class_mixing_keeps_a_one_hot_target() -> None:
    config = AugmentConfig(same_class_mix_prob=1.0, diff_class_mix_prob=0.0)
    augmenter = _augmenter(config, [400, 200, 500, 120, 300], [0, 1, 2, 3, 0])
    rng = np.random.default_rng(6)
    for _ in range(50):
        audio, target = augmenter.example(0, rng)
        np.testing.assert_array_equal(target, [1, 0, 0, 0])
        assert 0 < np.abs(audio).max() <= 1.0 + 1e-6


def test_examples_are_a_pure_function_of_the_seed() -> None:
    augmenter = _augmenter(AugmentConfig(), [400, 200, 500, 120, 300], [0, 1, 2, 3, 0])
    a = augmenter.example(2, np.random.default_rng((0, 3, 2)))
    b = augmenter.example(2, np.random.default_rng((0, 3, 2)))
    c = augmenter.example(2, np.random.default_rng((0, 4, 2)))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_config_rejects_probabilities_outside_the_unit_interval() -> None:
    from rtag.config import ConfigError

    with pytest.raises(ConfigError, match="augment.time_shift_prob"):
        AugmentConfig(time_shift_prob=1.5)
    with pytest.raises(ConfigError, match="must not exceed 1"):
        AugmentConfig(same_class_mix_prob=0.6, diff_class_mix_prob=0.6)
