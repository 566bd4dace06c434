"""Typing sequences made from recordings of single key presses and releases.

FSDKaggle2018's ``Computer_keyboard`` is typing: runs of keystrokes with a typist's rhythm, keys
ringing into each other, pauses between words. The real data holds one keyboard's single
presses and releases (``key_<code>-0`` press, ``key_<code>-1`` release); this module joins them
into sequences:

* a typist speed (keys per second) is drawn once per sequence; intervals between keystrokes are
  log-normal around it, so fast bursts overlap the previous key's ring-out;
* every keystroke is a random key, pressed, held for a random time and released (its release
  recording, where the key has one), at a level jittered around the sequence's;
* with a small probability a keystroke is followed by a pause (the end of a word or a thought).

Every sequence is a pure function of its random generator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offline.corpus.config import TypingConfig
from offline.effects import fade_out, set_peak_dbfs
from rtag.audio_io import load_audio

__all__ = ["Keystroke", "load_keystrokes", "typing_sequence"]

_KEY_NAME = re.compile(r"^(?P<key>.+)-(?P<phase>[01])$")


@dataclass(frozen=True)
class Keystroke:
    """One key of the keyboard: its press recording and, where recorded, its release.

    name: the key's code (``"1e"``); press, release: float32 mono samples at the corpus rate.
    """

    name: str
    press: np.ndarray
    release: np.ndarray | None


def load_keystrokes(paths: Sequence[Path], sample_rate_hz: int) -> list[Keystroke]:
    """Pair press (``*-0``) and release (``*-1``) recordings by key; a file whose stem does not
    end in ``-0``/``-1`` counts as a press of its own key. Raises ValueError when no press is found."""
    presses: dict[str, np.ndarray] = {}
    releases: dict[str, np.ndarray] = {}
    for path in sorted(paths):
        match = _KEY_NAME.match(path.stem)
        key, phase = (match["key"], match["phase"]) if match else (path.stem, "0")
        audio = load_audio(path, sample_rate_hz)
        (presses if phase == "0" else releases)[key] = audio
    if not presses:
        raise ValueError(f"no key-press recordings among {len(paths)} keystroke files")
    return [Keystroke(key, presses[key], releases.get(key)) for key in sorted(presses)]


def _add(out: np.ndarray, sound: np.ndarray, start: int, gain: float) -> None:
    end = min(out.size, start + sound.size)
    if end > start:
        out[start:end] += gain * sound[: end - start]


def typing_sequence(keys: Sequence[Keystroke], config: TypingConfig, sample_rate_hz: int,
                    rng: np.random.Generator) -> np.ndarray:
    """One typing sequence: float32 mono, ``config.length_s_range`` long (log-uniform), peak at a
    level drawn from ``config.peak_dbfs_range``, faded out over its last 10 ms."""
    low_s, high_s = config.length_s_range
    length = round(float(np.exp(rng.uniform(np.log(low_s), np.log(high_s)))) * sample_rate_hz)
    out = np.zeros(length, dtype=np.float32)
    interval_s = 1.0 / float(rng.uniform(*config.keys_per_s_range))
    time_s = float(rng.uniform(0.0, 0.3))
    while round(time_s * sample_rate_hz) < length:
        key = keys[int(rng.integers(len(keys)))]
        gain = float(10.0 ** (rng.normal(0.0, config.level_jitter_db) / 20.0))
        start = round(time_s * sample_rate_hz)
        _add(out, key.press, start, gain)
        if key.release is not None:
            hold = round(float(rng.uniform(*config.hold_s_range)) * sample_rate_hz)
            _add(out, key.release, start + hold, gain * float(rng.uniform(0.5, 1.0)))
        time_s += float(rng.lognormal(np.log(interval_s), config.rhythm_spread))
        if rng.random() < config.pause_probability:
            time_s += float(rng.uniform(*config.pause_s_range))
    out = fade_out(out, round(0.01 * sample_rate_hz))
    return set_peak_dbfs(out, float(rng.uniform(*config.peak_dbfs_range)))
