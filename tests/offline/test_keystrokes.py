"""Typing sequences joined from single key recordings: length, level, rhythm and determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from offline.corpus.config import TypingConfig
from offline.corpus.keystrokes import Keystroke, load_keystrokes, typing_sequence

RATE = 44100


def _click(samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(samples) * np.exp(-np.arange(samples) / 300.0)).astype(np.float32)


def test_presses_and_releases_pair_by_key(tmp_path: Path) -> None:
    for name in ("key_1e-0", "key_1e-1", "key_20-0", "odd"):
        sf.write(str(tmp_path / f"{name}.flac"), _click(2000, len(name)), RATE)
    keys = load_keystrokes(sorted(tmp_path.glob("*.flac")), RATE)
    by_name = {key.name: key for key in keys}
    assert set(by_name) == {"key_1e", "key_20", "odd"}
    assert by_name["key_1e"].release is not None and by_name["key_20"].release is None


def test_no_press_is_an_error_naming_the_count(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "key_1e-1.flac"), _click(2000, 1), RATE)
    with pytest.raises(ValueError, match="1 keystroke files"):
        load_keystrokes([tmp_path / "key_1e-1.flac"], RATE)


def test_a_sequence_has_the_configured_length_level_and_many_keystrokes() -> None:
    keys = [Keystroke(f"k{i}", _click(4000, i), _click(3000, 100 + i)) for i in range(5)]
    config = TypingConfig(length_s_range=(3.0, 3.0), keys_per_s_range=(6.0, 6.0), pause_probability=0.0,
                          peak_dbfs_range=(-6.0, -6.0))
    audio = typing_sequence(keys, config, RATE, np.random.default_rng(0))
    assert audio.shape == (3 * RATE,)
    assert 20 * np.log10(np.max(np.abs(audio))) == pytest.approx(-6.0, abs=0.01)
    # keystroke onsets: 10 ms frames whose energy jumps; about 6 a second for 3 s
    frames = np.square(audio[: audio.size // 441 * 441].reshape(-1, 441)).sum(axis=1)
    onsets = np.sum((frames[1:] > 20 * frames[:-1] + 1e-9) & (frames[1:] > 1e-4 * frames.max()))
    assert 8 <= onsets <= 40
    again = typing_sequence(keys, config, RATE, np.random.default_rng(0))
    np.testing.assert_array_equal(audio, again)


def test_bad_typing_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="typing.keys_per_s_range"):
        TypingConfig(keys_per_s_range=(9.0, 2.0))
    with pytest.raises(ValueError, match="typing.pause_probability"):
        TypingConfig(pause_probability=1.5)
