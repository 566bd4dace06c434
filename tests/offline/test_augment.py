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


def _robust(**probabilities: float) -> AugmentConfig:
    return AugmentConfig(time_shift_prob=0.0, same_class_mix_prob=0.0, diff_class_mix_prob=0.0, **probabilities)


def _tone(hz: float, samples: int = 44100) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(samples) / 44100)).astype(np.float32)


def _band_energy(audio: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    frequency = np.fft.rfftfreq(audio.size, 1 / 44100)
    return float(spectrum[(frequency >= low_hz) & (frequency < high_hz)].sum())


def test_robustness_steps_are_off_by_default_so_the_papers_recipe_is_unchanged() -> None:
    clip = _tone(440.0)
    augmenter = Augmenter(lambda i: clip, [0], 1, 44100, _robust(), sample_rate_hz=44100)
    audio, _ = augmenter.example(0, np.random.default_rng(0))
    np.testing.assert_array_equal(audio, clip)


def test_background_is_a_negative_clip_at_the_drawn_snr() -> None:
    tone, street = _tone(440.0), np.random.default_rng(1).standard_normal(44100).astype(np.float32)
    clips = [tone, street]
    config = _robust(background_prob=1.0, background_snr_db_range=(10.0, 10.0), background_noise_share=0.0)
    augmenter = Augmenter(lambda i: clips[i], [0, 1], 2, 44100, config, background_indices=[1], negative_class=1)
    audio, target = augmenter.example(0, np.random.default_rng(0))
    added = audio - tone
    snr_db = 20 * np.log10(np.sqrt(np.mean(tone**2)) / np.sqrt(np.mean(added**2)))
    assert snr_db == pytest.approx(10.0, abs=0.1)
    circular = np.fft.irfft(np.fft.rfft(added) * np.conj(np.fft.rfft(street)), n=street.size)
    assert circular.max() / (np.linalg.norm(added) * np.linalg.norm(street)) > 0.999  # a shifted loop of it
    np.testing.assert_array_equal(target, [1.0, 0.0])  # the label stays the foreground's


def test_band_limit_removes_the_top_and_low_cut_the_bottom() -> None:
    clip = _tone(200.0) + _tone(9000.0)
    limited = Augmenter(lambda i: clip, [0], 1, 44100, _robust(band_limit_prob=1.0, band_limit_hz_range=(3400.0, 3400.0)))
    audio, _ = limited.example(0, np.random.default_rng(0))
    assert _band_energy(audio, 8000, 10000) < 1e-4 * _band_energy(clip, 8000, 10000)
    assert _band_energy(audio, 150, 250) == pytest.approx(_band_energy(clip, 150, 250), rel=0.01)
    cut = Augmenter(lambda i: clip, [0], 1, 44100, _robust(low_cut_prob=1.0, low_cut_hz_range=(800.0, 800.0)))
    audio, _ = cut.example(0, np.random.default_rng(0))
    assert _band_energy(audio, 150, 250) < 0.01 * _band_energy(clip, 150, 250)


def test_eq_stays_within_its_gain_and_reverb_adds_a_tail() -> None:
    clip = _tone(1000.0)
    eq = Augmenter(lambda i: clip, [0], 1, 44100, _robust(eq_prob=1.0, eq_gain_db=6.0))
    for seed in range(5):
        audio, _ = eq.example(0, np.random.default_rng(seed))
        ratio_db = 10 * np.log10(_band_energy(audio, 990, 1010) / _band_energy(clip, 990, 1010))
        assert -6.01 <= ratio_db <= 6.01
    burst = np.zeros(44100, np.float32)
    burst[:2000] = _tone(1000.0)[:2000]
    room = Augmenter(lambda i: burst, [0], 1, 44100, _robust(reverb_prob=1.0, reverb_rt60_s_range=(0.8, 0.8)))
    audio, _ = room.example(0, np.random.default_rng(0))
    assert np.sqrt(np.mean(audio[8000:20000] ** 2)) > 1e-3  # the room rings after the burst


def test_pitch_shift_changes_pitch_and_length_by_the_same_ratio() -> None:
    clip = _tone(440.0, 88200)
    augmenter = Augmenter(lambda i: clip, [0], 1, 88200, _robust(pitch_shift_prob=1.0, pitch_shift_semitones=1.0))
    rng = np.random.default_rng(3)
    window = augmenter.window(0, rng)
    spectrum = np.abs(np.fft.rfft(window[:40000]))
    peak_hz = np.fft.rfftfreq(40000, 1 / 44100)[np.argmax(spectrum)]
    assert 440 * 2 ** (-1 / 12) - 2 <= peak_hz <= 440 * 2 ** (1 / 12) + 2 and abs(peak_hz - 440) > 0.5


def test_negative_examples_may_become_noise_and_levels_are_set() -> None:
    silence_like = np.full(44100, 1e-3, np.float32)
    config = _robust(negative_noise_prob=1.0, level_prob=1.0, level_dbfs_range=(-20.0, -20.0))
    augmenter = Augmenter(lambda i: silence_like, [0, 1], 2, 44100, config, negative_class=1)
    noise, target = augmenter.example(1, np.random.default_rng(0))
    assert np.std(noise) > 0.01 and target[1] == 1.0
    assert 20 * np.log10(np.max(np.abs(noise))) == pytest.approx(-20.0, abs=0.01)
    kept, _ = augmenter.example(0, np.random.default_rng(0))  # not negative: stays a constant, at -20 dBFS
    assert np.ptp(kept) < 1e-6


@pytest.mark.parametrize("field,value", [("background_prob", 1.5), ("background_snr_db_range", (30.0, 0.0)),
                                          ("band_limit_hz_range", (3400.0, 30000.0)), ("level_dbfs_range", (-10.0, 3.0)),
                                          ("pitch_shift_semitones", 24.0), ("reverb_rt60_s_range", (0.0, 1.0)),
                                          ("saturation_prob", -0.1), ("saturation_drive_db_range", (-3.0, 12.0)),
                                          ("saturation_drive_db_range", (12.0, 60.0))])
def test_bad_robustness_settings_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(Exception, match=f"augment.{field}"):
        AugmentConfig(**{field: value})


def test_saturation_bends_the_example_and_keeps_its_label() -> None:
    clip = _tone(1000.0)
    augmenter = Augmenter(lambda i: clip, [0], 1, 44100,
                          _robust(saturation_prob=1.0, saturation_drive_db_range=(18.0, 18.0)))
    audio, target = augmenter.example(0, np.random.default_rng(0))
    assert _band_energy(audio, 2990, 3010) > 1e3 * _band_energy(clip, 2990, 3010)  # odd harmonics appear
    assert np.max(np.abs(audio)) == pytest.approx(0.5, rel=1e-4)
    np.testing.assert_array_equal(target, [1.0])
