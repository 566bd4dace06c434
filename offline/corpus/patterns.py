"""Musical patterns for one clip: which notes, when, how loud.

Patterns:
    single    one held note (or one hit for drums and effects)
    repeat    the same note at a steady tempo
    arpeggio  the notes of a triad or seventh chord, up, down or up-and-down
    phrase    a melody stepping along a major or minor scale
    chord     a three- or four-note chord, struck together or strummed, repeated or held
    roll      drums only: fast strokes (40-90 ms apart) with a crescendo or decrescendo
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offline.corpus.recipes import DRUM, DRUM_CHANNEL, ClassRecipe

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_CHORDS = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 3, 7, 10), (0, 4, 7, 10), (0, 4, 7, 12))
_DRUM_NOTE_S = 0.2
_TAIL_S = 0.02


@dataclass(frozen=True)
class NoteEvent:
    """One note. start_s and duration_s are seconds from the clip start; velocity is 1..127."""

    start_s: float
    duration_s: float
    note: int
    velocity: int


@dataclass(frozen=True)
class Performance:
    """Everything the renderer needs for one clip.

    channel: MIDI channel index (9 for drums).
    program: GM program, or the bank-128 kit for drums.
    notes: the notes, sorted by start.
    length_s: clip length; every note ends before it.
    pattern: the pattern name (see module docstring).
    """

    channel: int
    program: int
    notes: tuple[NoteEvent, ...]
    length_s: float
    pattern: str


def perform(recipe: ClassRecipe, program: int, note_range: tuple[int, int], pattern: str,
            length_s: float, rng: np.random.Generator) -> Performance:
    """Draw a performance of ``pattern`` for one clip.

    recipe: the class being rendered; its kind and drum keys shape the pattern.
    program: GM program (melodic and effect) or drum kit (drum).
    note_range: inclusive (low, high) MIDI notes; ignored for drums.
    pattern: one of ``recipe.patterns``.
    length_s: clip length in seconds (> 0.1).
    rng: source of every random choice; the same generator state gives the same performance.
    """
    if pattern not in recipe.patterns:
        raise ValueError(f"{recipe.label}: pattern {pattern!r} not in {recipe.patterns}")
    onset_s = float(rng.uniform(0.0, min(0.25, 0.1 * length_s)))
    end_s = length_s - _TAIL_S
    beat_s = 60.0 / float(rng.uniform(60.0, 180.0))
    velocity = int(rng.integers(35, 121))
    if recipe.kind == DRUM:
        events = _drum_events(recipe, pattern, onset_s, end_s, beat_s, velocity, rng)
        channel = DRUM_CHANNEL
    else:
        events = _pitched_events(pattern, note_range, onset_s, end_s, beat_s, velocity, rng)
        channel = 0
    notes = tuple(sorted((_clamped(e, end_s) for e in events), key=lambda e: (e.start_s, e.note)))
    return Performance(channel, program, notes, length_s, pattern)


def _clamped(event: NoteEvent, end_s: float) -> NoteEvent:
    duration_s = max(0.01, min(event.duration_s, end_s - event.start_s))
    return NoteEvent(event.start_s, duration_s, event.note, int(np.clip(event.velocity, 1, 127)))


def _jitter(velocity: int, rng: np.random.Generator) -> int:
    return velocity + int(rng.integers(-8, 9))


def _steps(onset_s: float, end_s: float, step_s: float) -> list[float]:
    count = max(1, int((end_s - onset_s) // step_s))
    return [onset_s + i * step_s for i in range(count)]


def _drum_events(recipe: ClassRecipe, pattern: str, onset_s: float, end_s: float, beat_s: float,
                 velocity: int, rng: np.random.Generator) -> list[NoteEvent]:
    keys = recipe.drum_notes
    if pattern == "single":
        return [NoteEvent(onset_s, _DRUM_NOTE_S, int(rng.choice(keys)), velocity)]
    if pattern == "repeat":
        step_s = beat_s * float(rng.choice([0.25, 0.5, 1.0]))
        return [NoteEvent(t, _DRUM_NOTE_S, int(rng.choice(keys)), _jitter(velocity, rng))
                for t in _steps(onset_s, end_s, step_s)]
    step_s = float(rng.uniform(0.04, 0.09))
    span_s = float(rng.uniform(0.3, 1.0)) * (end_s - onset_s)
    times = _steps(onset_s, onset_s + span_s, step_s)
    key = int(rng.choice(keys))
    ramp = np.linspace(0.4, 1.0, len(times)) if rng.random() < 0.5 else np.linspace(1.0, 0.4, len(times))
    return [NoteEvent(t, step_s, key, _jitter(int(velocity * r) + 20, rng)) for t, r in zip(times, ramp)]


def _pitched_events(pattern: str, note_range: tuple[int, int], onset_s: float, end_s: float,
                    beat_s: float, velocity: int, rng: np.random.Generator) -> list[NoteEvent]:
    low, high = note_range
    if pattern == "single":
        duration_s = (end_s - onset_s) * float(rng.uniform(0.4, 1.0))
        return [NoteEvent(onset_s, duration_s, int(rng.integers(low, high + 1)), velocity)]
    if pattern == "repeat":
        note = int(rng.integers(low, high + 1))
        step_s = beat_s * float(rng.choice([0.5, 1.0, 2.0]))
        gate = float(rng.uniform(0.5, 0.95))
        return [NoteEvent(t, step_s * gate, note, _jitter(velocity, rng)) for t in _steps(onset_s, end_s, step_s)]
    if pattern == "phrase":
        return _phrase(low, high, onset_s, end_s, beat_s, velocity, rng)
    shape = _CHORDS[int(rng.integers(len(_CHORDS)))]
    root = int(rng.integers(low, max(low, high - shape[-1]) + 1))
    notes = [root + i for i in shape if root + i <= high] or [root]
    if pattern == "arpeggio":
        order = notes if rng.random() < 0.5 else notes[::-1]
        if rng.random() < 0.3:
            order = notes + notes[-2:0:-1]
        step_s = beat_s * float(rng.choice([0.25, 0.5, 1.0]))
        gate = float(rng.uniform(0.6, 1.5))
        return [NoteEvent(t, step_s * gate, order[i % len(order)], _jitter(velocity, rng))
                for i, t in enumerate(_steps(onset_s, end_s, step_s))]
    # chord: struck together or strummed, held or repeated
    strum_s = float(rng.uniform(0.0, 0.03))
    step_s = (end_s - onset_s) if rng.random() < 0.4 else beat_s * float(rng.choice([1.0, 2.0]))
    gate = float(rng.uniform(0.6, 1.0))
    return [NoteEvent(t + k * strum_s, step_s * gate, note, _jitter(velocity, rng))
            for t in _steps(onset_s, end_s, step_s) for k, note in enumerate(notes)]


def _phrase(low: int, high: int, onset_s: float, end_s: float, beat_s: float, velocity: int,
            rng: np.random.Generator) -> list[NoteEvent]:
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    tonic = int(rng.integers(low, low + 12))
    pitches = [tonic + 12 * octave + step for octave in range(-1, 9) for step in scale]
    pitches = [p for p in pitches if low <= p <= high] or [low]
    index = int(rng.integers(len(pitches)))
    events = []
    t = onset_s
    while t < end_s - 0.05:
        length_s = beat_s * float(rng.choice([0.25, 0.5, 0.5, 1.0, 1.5]))
        events.append(NoteEvent(t, length_s * 0.9, pitches[index], _jitter(velocity, rng)))
        index = int(np.clip(index + rng.choice([-2, -1, -1, 1, 1, 2]), 0, len(pitches) - 1))
        t += length_s
    return events
