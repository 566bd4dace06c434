"""Every pattern yields notes inside the clip, the instrument's range and MIDI's velocity range,
and the same generator state gives the same performance."""

from __future__ import annotations

import numpy as np
import pytest

from offline.corpus.patterns import perform
from offline.corpus.recipes import DRUM, DRUM_CHANNEL, RECIPES

CASES = [(label, pattern) for label, recipe in RECIPES.items() for pattern in recipe.patterns]


@pytest.mark.parametrize(("label", "pattern"), CASES)
def test_notes_fit_clip_range_and_velocity(label: str, pattern: str) -> None:
    recipe = RECIPES[label]
    for seed in range(5):
        for length_s in (0.5, 2.0, 6.0):
            rng = np.random.default_rng(seed)
            if recipe.kind == DRUM:
                program, note_range = 0, (0, 127)
            else:
                voice = recipe.voices[seed % len(recipe.voices)]
                program, note_range = voice.program, (voice.low_note, voice.high_note)
            performance = perform(recipe, program, note_range, pattern, length_s, rng)
            assert performance.notes, f"{label}/{pattern} played nothing"
            for note in performance.notes:
                assert 0.0 <= note.start_s and note.start_s + note.duration_s <= length_s
                assert 1 <= note.velocity <= 127
                if recipe.kind == DRUM:
                    assert note.note in recipe.drum_notes
                else:
                    assert note_range[0] <= note.note <= note_range[1]
            assert performance.channel == (DRUM_CHANNEL if recipe.kind == DRUM else 0)


def test_roll_strokes_are_40_to_90_ms_apart() -> None:
    performance = perform(RECIPES["Snare_drum"], 0, (0, 127), "roll", 3.0, np.random.default_rng(3))
    gaps = np.diff([note.start_s for note in performance.notes])
    assert len(gaps) >= 3 and np.all((gaps >= 0.04 - 1e-9) & (gaps <= 0.09 + 1e-9))


def test_same_generator_state_same_performance() -> None:
    recipe = RECIPES["Acoustic_guitar"]
    first = perform(recipe, 24, (40, 81), "chord", 4.0, np.random.default_rng(9))
    second = perform(recipe, 24, (40, 81), "chord", 4.0, np.random.default_rng(9))
    assert first == second


def test_unknown_pattern_is_refused_with_the_class_name() -> None:
    with pytest.raises(ValueError, match="Cello"):
        perform(RECIPES["Cello"], 42, (36, 76), "roll", 2.0, np.random.default_rng(0))
