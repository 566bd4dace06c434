"""The papers' test-time crops and padded positions, and the geometric mean."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtag.networks import RumbleFilter
from rtag.tta import (
    GeometricMean,
    geometric_mean,
    input_weights,
    tag_clip,
    tta_batches,
    tta_inputs,
    tta_offsets,
)


@given(
    length=st.integers(1, 5000),
    window=st.integers(1, 2000),
    step=st.integers(1, 700),
)
def test_offsets_cover_the_clip_every_step_and_end_flush(length: int, window: int, step: int) -> None:
    offsets = tta_offsets(length, window, step)
    span = abs(length - window)
    assert offsets[0] == 0 and offsets[-1] == span
    gaps = np.diff(offsets)
    assert np.all(gaps > 0) and np.all(gaps <= step)
    assert np.all(gaps[:-1] == step)


@given(length=st.integers(1, 3000), window=st.integers(1, 1500), step=st.integers(1, 500))
def test_every_input_holds_the_clip_or_a_crop_of_it(length: int, window: int, step: int) -> None:
    clip = np.arange(1, length + 1, dtype=np.float32)
    inputs = tta_inputs(clip, window, step)
    assert inputs.shape == (len(tta_offsets(length, window, step)), window)
    for offset, row in zip(tta_offsets(length, window, step), inputs):
        if length >= window:
            assert np.array_equal(row, clip[offset : offset + window])
        else:
            assert np.array_equal(row[offset : offset + length], clip)
            assert not row[:offset].any() and not row[offset + length :].any()


def test_two_second_model_crops_a_three_second_clip_as_the_papers_do() -> None:
    offsets = tta_offsets(132300, 88200, 5120)
    assert offsets[:3].tolist() == [0, 5120, 10240]
    assert offsets[-1] == 132300 - 88200
    assert len(offsets) == 10  # nine full steps and the last crop flush with the end
    assert tta_offsets(132300, 88200, 51200).tolist() == [0, 44100]


def test_geometric_mean_is_renormalised_and_lets_no_single_zero_veto() -> None:
    probs = np.array([[0.5, 0.5, 0.0], [0.9, 0.1, 0.0], [0.0, 0.5, 0.5]])
    combined = geometric_mean(probs, axis=0)
    assert combined.sum() == pytest.approx(1.0, abs=1e-6)
    expected = np.exp(np.log(np.clip(probs, 1e-7, 1)).mean(axis=0))
    assert np.allclose(combined, expected / expected.sum(), atol=1e-6)
    assert combined.argmax() == 1


def _loud_or_quiet(windows: np.ndarray) -> np.ndarray:
    """Class 0 for a window whose peak is above 0.1, class 1 for a quieter one (what a
    peak-normalising network may say of a note's decay)."""
    loud = np.abs(windows).max(axis=1) > 0.1
    return np.where(loud[:, None], [[0.9, 0.1]], [[0.2, 0.8]]).astype(np.float32)


def test_energy_weighting_keeps_a_quiet_tail_from_outvoting_the_sound() -> None:
    rng = np.random.default_rng(0)
    clip = np.concatenate([0.5 * rng.standard_normal(1000), 0.01 * rng.standard_normal(9000)]).astype(np.float32)
    equal = tag_clip(_loud_or_quiet, clip, 1000, 500, weighting="equal")
    energy = tag_clip(_loud_or_quiet, clip, 1000, 500)
    assert equal.argmax() == 1  # 18 of 19 windows are the quiet tail
    assert energy.argmax() == 0 and energy[0] > 0.85  # the one loud window holds almost all the energy


def test_energy_weights_are_those_of_what_a_rumble_filtered_network_hears() -> None:
    sample_rate_hz = 44100
    t = np.arange(4 * sample_rate_hz) / sample_rate_hz
    note = 0.05 * np.sin(2 * np.pi * 220.0 * t) * np.exp(-t / 0.5)  # a plucked note dying away
    rumble = 0.3 * np.sin(2 * np.pi * 6.0 * t)  # far below every class, 16 dB above the note's attack
    inputs = tta_inputs((note + rumble).astype(np.float32), sample_rate_hz, sample_rate_hz // 2)
    heard = input_weights(inputs, "energy", RumbleFilter(30.0, sample_rate_hz))
    alone = input_weights(tta_inputs(note.astype(np.float32), sample_rate_hz, sample_rate_hz // 2), "energy")
    raw = input_weights(inputs, "energy")
    assert heard[0] == pytest.approx(alone[0], rel=0.05)  # the attack's window: the note's energy
    assert np.all(np.diff(heard[:4]) < 0) and heard[0] > 15 * heard[-1]  # the attack weighs most, as without rumble
    assert raw.max() < 1.1 * raw.min()  # unfiltered, the rumble makes them all alike


def test_energy_weighting_of_a_padded_short_clip_is_the_papers_mean() -> None:
    clip = np.linspace(-0.3, 0.3, 700, dtype=np.float32)
    inputs = tta_inputs(clip, 1000, 100)  # every position holds the whole clip: the same energy
    assert np.allclose(input_weights(inputs, "energy"), input_weights(inputs, "energy")[0])
    assert np.allclose(tag_clip(_loud_or_quiet, clip, 1000, 100), tag_clip(_loud_or_quiet, clip, 1000, 100, weighting="equal"))


def test_silent_inputs_weigh_alike_and_weightings_are_checked() -> None:
    assert np.allclose(input_weights(np.zeros((3, 10)), "energy"), 1e-12)
    assert np.array_equal(input_weights(np.ones((2, 10)), "equal"), [1.0, 1.0])
    with pytest.raises(ValueError, match="energy, equal"):
        tag_clip(_loud_or_quiet, np.ones(10, dtype=np.float32), 5, 5, weighting="loudest")
    mean = GeometricMean()
    with pytest.raises(ValueError, match="positive"):
        mean.add(np.full((2, 2), 0.5), np.array([1.0, 0.0]))
    mean.add(np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([3.0, 1.0]))
    expected = np.exp((3 * np.log([0.9, 0.1]) + np.log([0.1, 0.9])) / 4)
    assert np.allclose(mean.result(), expected / expected.sum(), atol=1e-6)


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        tta_offsets(0, 10, 5)
    with pytest.raises(ValueError):
        tta_offsets(10, 10, 0)
    with pytest.raises(ValueError, match="1-D"):
        tta_inputs(np.zeros((2, 10), dtype=np.float32), 10, 5)


@given(
    length=st.integers(1, 3000),
    window=st.integers(1, 1500),
    step=st.integers(1, 500),
    batch_size=st.integers(1, 40),
)
def test_batches_are_the_same_inputs_in_the_same_order(length: int, window: int, step: int, batch_size: int) -> None:
    clip = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    batches = list(tta_batches(clip, window, step, batch_size))
    assert all(b.shape[0] == batch_size for b in batches[:-1]) and 1 <= batches[-1].shape[0] <= batch_size
    np.testing.assert_array_equal(np.concatenate(batches), tta_inputs(clip, window, step))


def test_batches_of_a_ten_minute_clip_hold_one_batch_at_a_time() -> None:
    clip = np.zeros(600 * 44100, dtype=np.float32)  # 10 min; all its inputs at once would be 1.8 GB
    window, step, batch_size = 88200, 5120, 32
    batch_bytes = batch_size * window * (4 + 8)  # the crops and their int64 index
    tracemalloc.start()
    try:
        count = sum(batch.shape[0] for batch in tta_batches(clip, window, step, batch_size))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(tta_offsets(clip.shape[0], window, step)) == 5152
    assert peak_bytes < 2 * batch_bytes, f"peak {peak_bytes / 1e6:.0f} MB"


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(tta_batches(np.zeros(10, np.float32), 4, 2, 0))
