"""Smoothing in log space and hysteresis events."""

from __future__ import annotations

import numpy as np
import pytest

from rtag.runtime_config import RuntimeConfig
from rtag.scheduler import Window
from rtag.smoother import EventTracker, ProbabilitySmoother, TagEventDetector

LABELS = ("Bark", "Meow", "Cough")


def window(index: int, hop: int = 100, size: int = 200) -> Window:
    return Window(index, index * hop, np.zeros(size, np.float32), sample_rate_hz=100, capture_time_s=0.0)


def test_smoother_is_the_renormalised_geometric_mean_of_the_last_k() -> None:
    smoother = ProbabilitySmoother(smoothing_windows=2)
    a = np.array([0.8, 0.1, 0.1], np.float32)
    b = np.array([0.2, 0.6, 0.2], np.float32)
    c = np.array([0.1, 0.1, 0.8], np.float32)
    np.testing.assert_allclose(smoother.update(a), a, atol=1e-6)
    expected = np.sqrt(a * b) / np.sqrt(a * b).sum()
    np.testing.assert_allclose(smoother.update(b), expected, atol=1e-6)
    expected = np.sqrt(b * c) / np.sqrt(b * c).sum()  # a has left the window
    np.testing.assert_allclose(smoother.update(c), expected, atol=1e-6)


def test_a_tag_starts_once_and_ends_only_below_the_off_threshold() -> None:
    detector = TagEventDetector(LABELS, on_threshold=0.5, off_threshold=0.3)
    bark = [0.2, 0.6, 0.45, 0.35, 0.7, 0.25, 0.1]
    events = []
    for i, p in enumerate(bark):
        events += detector.update(np.array([p, 0.0, 0.0]), window(i))
    assert [(e.label, e.kind, e.sample, e.window_index) for e in events] == [
        ("Bark", "start", 200, 1),  # the end of window 0, which did not hear enough of it
        ("Bark", "end", 600, 5),  # the end of window 4, the last one that held it
    ]
    assert str(events[0]) == "Bark started at 2.00 s (p=0.60)"
    assert events[1].time_s == pytest.approx(6.0)


def test_finish_closes_active_tags_at_the_end_of_the_last_window() -> None:
    detector = TagEventDetector(LABELS, on_threshold=0.5, off_threshold=0.3)
    detector.update(np.array([0.9, 0.6, 0.0]), window(0))
    detector.update(np.array([0.9, 0.1, 0.0]), window(1))
    assert detector.active_labels == ("Bark",)
    ends = detector.finish()
    assert [(e.label, e.kind, e.sample, e.probability) for e in ends] == [("Bark", "end", 300, pytest.approx(0.9))]
    assert detector.active_labels == () and detector.finish() == []


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="off_threshold"):
        TagEventDetector(LABELS, on_threshold=0.3, off_threshold=0.5)


def test_silence_ends_every_active_tag_and_starts_none() -> None:
    detector = TagEventDetector(LABELS, on_threshold=0.5, off_threshold=0.3)
    assert detector.update(np.array([0.9, 0.6, 0.0]), window(0))
    ended = detector.silence(window(1))
    assert sorted((e.label, e.kind, e.sample, e.probability) for e in ended) == [
        ("Bark", "end", 200, 0.0), ("Meow", "end", 200, 0.0),  # the end of window 0, the last that held them
    ]
    assert detector.silence(window(2)) == [] and detector.finish() == []
    assert [(e.label, e.kind) for e in detector.update(np.array([0.9, 0.0, 0.0]), window(3))] == [("Bark", "start")]


def test_ignored_labels_never_start_and_other_is_shown_as_other_sound() -> None:
    detector = TagEventDetector(("Bark", "_other"), ignored_labels=("_other",))
    assert detector.update(np.array([0.1, 0.9]), window(0)) == []
    reporting = TagEventDetector(("Bark", "_other"))
    events = reporting.update(np.array([0.1, 0.9]), window(0))
    assert [(e.label, e.kind) for e in events] == [("_other", "start")]
    assert str(events[0]) == "other sound started at 0.00 s (p=0.90)"


def test_reset_restarts_the_geometric_mean() -> None:
    smoother = ProbabilitySmoother(smoothing_windows=3)
    smoother.update(np.array([0.8, 0.1, 0.1], np.float32))
    smoother.reset()
    fresh = np.array([0.1, 0.1, 0.8], np.float32)
    np.testing.assert_allclose(smoother.update(fresh), fresh, atol=1e-6)


def test_a_sound_starts_on_the_first_window_that_hears_it_and_is_held_through_one_weak_window() -> None:
    bark = [0.05, 0.05, 0.9, 0.9, 0.2, 0.9, 0.02, 0.02]
    rows = [np.array([p, (1 - p) / 2, (1 - p) / 2], np.float32) for p in bark]

    def events(config: RuntimeConfig) -> list[tuple[str, int, int]]:
        tracker = EventTracker(LABELS, config)
        found = []
        for index, probs in enumerate(rows):
            found += [(e.kind, e.sample, e.window_index) for e in tracker.window(window(index), probs)[1]
                      if e.label == "Bark"]
        return found

    # window onset: starts at window 2 (timed at window 1's end), survives window 4 (0.2 alone is below
    # the off threshold; the mean of 0.9, 0.9, 0.2 is not), ends on window 6
    assert events(RuntimeConfig()) == [("start", 300, 2), ("end", 700, 6)]
    # the geometric mean alone is slow to rise: it needs two windows of the sound, one hop later
    assert events(RuntimeConfig(onset="smoothed")) == [("start", 400, 3), ("end", 700, 6)]


def test_the_tracker_restarts_after_silence() -> None:
    tracker = EventTracker(LABELS, RuntimeConfig())
    loud = np.array([0.9, 0.05, 0.05], np.float32)
    assert [e.kind for e in tracker.window(window(0), loud)[1]] == ["start"]
    smoothed, ends = tracker.window(window(1), None)
    assert [e.kind for e in ends] == ["end"] and not smoothed.any()
    starts = tracker.window(window(2), loud)[1]
    assert [(e.kind, e.sample) for e in starts] == [("start", 200)]  # after silence: its own start
