"""Room response, background and level of rendered clips do what their names say."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.effects import (
    add_background,
    add_reverb,
    coloured_noise,
    fade_out,
    loop_to_length,
    room_impulse_response,
    saturate,
    set_peak_dbfs,
)

RATE = 44100


def _db(x: float) -> float:
    return 20 * np.log10(x)


def test_room_response_decays_60_db_over_rt60() -> None:
    response = room_impulse_response(0.5, RATE, np.random.default_rng(0))
    assert response.size == round(0.5 * RATE)
    assert np.sum(response.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-5)
    window = 2000
    start_rms = np.sqrt(np.mean(response[:window] ** 2))
    end_rms = np.sqrt(np.mean(response[-window:] ** 2))
    assert _db(start_rms / end_rms) == pytest.approx(60.0 - 60.0 * window / response.size, abs=3.0)


def test_reverb_keeps_length_and_sets_wet_level() -> None:
    rng = np.random.default_rng(1)
    dry = np.zeros(RATE, dtype=np.float32)
    dry[1000] = 1.0
    wet = add_reverb(dry, room_impulse_response(0.3, RATE, rng), wet=0.5)
    assert wet.shape == dry.shape
    tail = wet - dry
    assert np.sqrt(np.mean(tail**2)) == pytest.approx(0.5 * np.sqrt(np.mean(dry**2)), rel=1e-3)


@settings(max_examples=25, deadline=None)
@given(snr_db=st.floats(-10, 60), seed=st.integers(0, 1000))
def test_background_is_added_at_the_requested_snr(snr_db: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    signal = np.sin(np.linspace(0, 200, 8000)).astype(np.float32)
    noise = rng.standard_normal(8000).astype(np.float32)
    mixed = add_background(signal, noise, snr_db)
    added = mixed - signal
    measured = _db(np.sqrt(np.mean(signal**2)) / np.sqrt(np.mean(added**2)))
    assert measured == pytest.approx(snr_db, abs=0.01)


@pytest.mark.parametrize(("colour", "slope_db_per_octave"), [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_coloured_noise_has_its_spectral_slope(colour: str, slope_db_per_octave: float) -> None:
    noise = coloured_noise(2**18, colour, np.random.default_rng(2))
    assert np.sqrt(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    power = np.abs(np.fft.rfft(noise)) ** 2
    frequency = np.arange(power.size)
    band = lambda low: power[(frequency >= low) & (frequency < 2 * low)].mean()  # noqa: E731
    octave_db = 10 * np.log10(band(8000) / band(4000))
    assert octave_db == pytest.approx(slope_db_per_octave, abs=0.5)


def test_unknown_noise_colour_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="violet"):
        coloured_noise(100, "violet", np.random.default_rng(0))


def test_loop_wraps_a_short_background() -> None:
    assert loop_to_length(np.arange(3.0), 7, offset=2).tolist() == [2, 0, 1, 2, 0, 1, 2]


@settings(max_examples=25, deadline=None)
@given(peak_dbfs=st.floats(-30, -1), seed=st.integers(0, 1000))
def test_peak_level_is_exact(peak_dbfs: float, seed: int) -> None:
    audio = np.random.default_rng(seed).standard_normal(1000).astype(np.float32)
    assert _db(np.max(np.abs(set_peak_dbfs(audio, peak_dbfs)))) == pytest.approx(peak_dbfs, abs=1e-3)


def test_silence_cannot_be_levelled() -> None:
    with pytest.raises(ValueError, match="silent"):
        set_peak_dbfs(np.zeros(10, dtype=np.float32), -6.0)


def test_fade_out_ends_at_zero_and_keeps_the_start() -> None:
    faded = fade_out(np.ones(100, dtype=np.float32), 10)
    assert faded[-1] == 0.0 and np.all(faded[:90] == 1.0)


def _third_harmonic_db(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio))  # 1 Hz bins of a 1 s, 1 kHz tone
    return _db(spectrum[3000] / spectrum[1000])


@pytest.mark.parametrize("drive_db", [3.0, 12.0, 24.0])
def test_saturation_keeps_the_peak_and_adds_odd_harmonics(drive_db: float) -> None:
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * np.arange(RATE) / RATE)).astype(np.float32)
    shaped = saturate(tone, drive_db)
    assert shaped.dtype == np.float32 and shaped.shape == tone.shape
    assert np.max(np.abs(shaped)) == pytest.approx(0.3, rel=1e-5)
    assert _third_harmonic_db(tone) < -80.0  # the input is a pure tone
    assert _third_harmonic_db(shaped) > -40.0
    spectrum = np.abs(np.fft.rfft(shaped))
    assert spectrum[2000] < 1e-3 * spectrum[1000]  # a symmetric clipper adds no even harmonics
    assert _third_harmonic_db(shaped) > _third_harmonic_db(saturate(tone, drive_db - 3.0))  # more drive, more


def test_saturation_of_silence_is_silence() -> None:
    np.testing.assert_array_equal(saturate(np.zeros(100, np.float32), 12.0), np.zeros(100, np.float32))
