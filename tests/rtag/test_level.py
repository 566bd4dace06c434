"""Window levels and the silence gate's decision."""

from __future__ import annotations

import numpy as np
import pytest

from rtag.level import LEVEL_FLOOR_DBFS, is_silent, window_level_dbfs

RATE_HZ = 44100


def test_a_full_scale_sine_is_minus_3_dbfs_and_digital_silence_is_the_floor() -> None:
    t = np.arange(2 * RATE_HZ) / RATE_HZ
    assert window_level_dbfs(np.sin(2 * np.pi * 1000 * t).astype(np.float32)) == pytest.approx(-3.01, abs=0.02)
    assert window_level_dbfs(np.zeros(2 * RATE_HZ, np.float32)) == LEVEL_FLOOR_DBFS
    assert window_level_dbfs(np.zeros(0, np.float32)) == LEVEL_FLOOR_DBFS


def test_the_loudest_frame_sets_the_level_so_a_short_sound_in_silence_is_not_silence() -> None:
    window = np.zeros(2 * RATE_HZ, np.float32)
    snap = np.random.default_rng(0).standard_normal(1024).astype(np.float32) * 0.05  # 23 ms at -26 dBFS RMS
    window[50000:51024] = snap
    whole_rms_dbfs = 10 * np.log10(np.mean(np.square(window.astype(np.float64))))
    assert whole_rms_dbfs < -45  # the RMS of the whole window would call it silence ...
    level = window_level_dbfs(window)
    assert level > -35  # ... its loudest frame does not
    assert not is_silent(level, -50.0)


def test_steady_noise_measures_at_its_rms_and_a_short_last_frame_counts() -> None:
    noise = np.random.default_rng(1).standard_normal(2 * RATE_HZ) * 10 ** (-60 / 20)
    assert window_level_dbfs(noise.astype(np.float32)) == pytest.approx(-60.0, abs=1.0)
    tail = np.zeros(2 * 2048 + 10, np.float32)
    tail[-10:] = 0.5  # only the 10-sample last frame holds sound
    assert window_level_dbfs(tail) == pytest.approx(20 * np.log10(0.5), abs=0.01)
    with pytest.raises(ValueError, match="frame_samples"):
        window_level_dbfs(tail, frame_samples=0)


def test_the_gate_compares_with_the_threshold_and_none_disables_it() -> None:
    assert is_silent(-60.0, -50.0) and not is_silent(-50.0, -50.0) and not is_silent(-40.0, -50.0)
    assert not is_silent(LEVEL_FLOOR_DBFS, None)
