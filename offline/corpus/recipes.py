"""Which General MIDI sounds render which FSDKaggle2018 class, and how they may be played.

Program numbers are 0-based as sent in a MIDI program-change message (GM's 1-based "125 Telephone
Ring" is program 124 here). Note ranges are MIDI note numbers at sounding pitch, kept inside each
instrument's realistic range. Drum classes play General MIDI percussion keys on channel 10
(index 9) with one of the acoustic drum kits in bank 128.
"""

from __future__ import annotations

from dataclasses import dataclass

MELODIC = "melodic"
EFFECT = "effect"
DRUM = "drum"

DRUM_CHANNEL = 9
"""MIDI channel index of General MIDI percussion (channel 10 counted from 1)."""

ACOUSTIC_DRUM_KITS: tuple[int, ...] = (0, 8, 16, 32, 40)
"""Bank-128 kit programs with acoustic kits: Standard, Room, Power, Jazz, Brush. Electronic (24),
TR-808 (25) and Orchestra (48) are left out: the first two are drum machines, the last maps
keys to concert percussion."""


@dataclass(frozen=True)
class Voice:
    """One General MIDI program with the notes it may play.

    program: 0-based GM program (bank 0).
    low_note, high_note: inclusive MIDI note range at sounding pitch.
    """

    program: int
    low_note: int
    high_note: int


@dataclass(frozen=True)
class ClassRecipe:
    """How to render one class.

    label: FSDKaggle2018 class name.
    kind: ``"melodic"`` (pitched instrument), ``"effect"`` (GM sound effect) or ``"drum"``.
    voices: programs for melodic and effect classes; empty for drums.
    drum_notes: GM percussion keys for drum classes; empty otherwise.
    polyphonic: the instrument plays chords (chord and strum patterns allowed).
    patterns: pattern names the clip generator may choose (see ``offline.corpus.patterns``).
    """

    label: str
    kind: str
    voices: tuple[Voice, ...] = ()
    drum_notes: tuple[int, ...] = ()
    polyphonic: bool = False
    patterns: tuple[str, ...] = ()


_MONO = ("single", "repeat", "arpeggio", "phrase")
_POLY = ("single", "repeat", "arpeggio", "phrase", "chord")
_EFFECT = ("single", "repeat")
_DRUM = ("single", "repeat", "roll")

RECIPES: dict[str, ClassRecipe] = {
    recipe.label: recipe
    for recipe in (
        ClassRecipe("Acoustic_guitar", MELODIC, (Voice(24, 40, 81), Voice(25, 40, 84)), polyphonic=True,
                    patterns=_POLY),
        ClassRecipe("Cello", MELODIC, (Voice(42, 36, 76),), patterns=_MONO),
        ClassRecipe("Double_bass", MELODIC, (Voice(43, 28, 57), Voice(32, 28, 60)), patterns=_MONO),
        ClassRecipe("Clarinet", MELODIC, (Voice(71, 50, 91),), patterns=_MONO),
        ClassRecipe("Flute", MELODIC, (Voice(73, 60, 96),), patterns=_MONO),
        ClassRecipe("Oboe", MELODIC, (Voice(68, 58, 91),), patterns=_MONO),
        ClassRecipe("Saxophone", MELODIC,
                    (Voice(64, 56, 87), Voice(65, 49, 80), Voice(66, 44, 75), Voice(67, 36, 68)),
                    patterns=_MONO),
        ClassRecipe("Trumpet", MELODIC, (Voice(56, 54, 82), Voice(59, 54, 82)), patterns=_MONO),
        ClassRecipe("Violin_or_fiddle", MELODIC, (Voice(40, 55, 93), Voice(110, 55, 93)), patterns=_MONO),
        ClassRecipe("Electric_piano", MELODIC, (Voice(4, 28, 100), Voice(5, 28, 100)), polyphonic=True,
                    patterns=_POLY),
        ClassRecipe("Glockenspiel", MELODIC, (Voice(9, 72, 105),), patterns=_MONO),
        ClassRecipe("Harmonica", MELODIC, (Voice(22, 60, 96),), polyphonic=True, patterns=_POLY),
        ClassRecipe("Chime", MELODIC, (Voice(14, 60, 77),), patterns=("single", "repeat", "phrase")),
        ClassRecipe("Telephone", EFFECT, (Voice(124, 60, 72),), patterns=_EFFECT),
        ClassRecipe("Applause", EFFECT, (Voice(126, 52, 72),), patterns=("single",)),
        ClassRecipe("Gunshot_or_gunfire", EFFECT, (Voice(127, 40, 72),), patterns=_EFFECT),
        ClassRecipe("Bass_drum", DRUM, drum_notes=(35, 36), patterns=_DRUM),
        ClassRecipe("Snare_drum", DRUM, drum_notes=(38, 40), patterns=_DRUM),
        ClassRecipe("Hi-hat", DRUM, drum_notes=(42, 44, 46), patterns=_DRUM),
        ClassRecipe("Cowbell", DRUM, drum_notes=(56,), patterns=("single", "repeat")),
        ClassRecipe("Tambourine", DRUM, drum_notes=(54,), patterns=_DRUM),
    )
}
"""Every class the corpus can render, keyed by label."""


def _voices(programs: tuple[int, ...], low_note: int, high_note: int) -> tuple[Voice, ...]:
    return tuple(Voice(program, low_note, high_note) for program in programs)


OTHER_RECIPES: tuple[ClassRecipe, ...] = (
    # bass-register winds, brass and electric basses: trombone, tuba, French horn, bassoon;
    # electric bass (finger, pick), slap and synth basses
    ClassRecipe("_other", MELODIC, _voices((57, 58, 60, 70), 34, 72) + _voices((33, 34, 36, 37, 38, 39), 28, 60),
                patterns=_MONO),
    # keyboards and mallets outside the classes: vibraphone, marimba, xylophone, five organs, two
    # accordions, overdriven and distortion guitar, kalimba, steel drums. No plucked strings
    # (harpsichord, dulcimer, harp, sitar, banjo, shamisen, koto): a single plucked note of them is
    # too close to Acoustic_guitar to be taught as a sound of no class (docs/corpus.md)
    ClassRecipe("_other", MELODIC,
                _voices((11, 12, 16, 17, 18, 19, 20, 21, 23, 29, 30, 114), 45, 84)
                + _voices((13, 108), 65, 96),
                polyphonic=True, patterns=_POLY),
    # synthesizers, choirs and voices: synth strings, choir, voice, synth voice, synth brass,
    # the eight leads and eight pads
    ClassRecipe("_other", MELODIC, _voices((50, 51, 52, 53, 54, 62, 63, *range(80, 96)), 41, 84),
                polyphonic=True, patterns=_POLY),
    # whistles and blown sounds: blown bottle, whistle
    ClassRecipe("_other", MELODIC, _voices((76, 78), 60, 91), patterns=_MONO),
    # sound effects outside the classes: orchestra hit, the eight synth effects, reverse cymbal,
    # fret noise, breath, seashore, bird tweet, helicopter
    ClassRecipe("_other", EFFECT, _voices((55, *range(96, 104), 119, 120, 121, 122, 123, 125), 48, 72),
                patterns=_EFFECT),
    # drum-kit sounds outside the classes: toms, crash, ride, Chinese and splash cymbals
    ClassRecipe("_other", DRUM, drum_notes=(41, 43, 45, 47, 48, 49, 50, 51, 52, 55, 57), patterns=_DRUM),
    # hand percussion outside the classes: bongos, congas, timbales, cabasa, maracas, guiro,
    # claves, wood blocks, cuica, triangle
    ClassRecipe("_other", DRUM, drum_notes=(60, 61, 62, 63, 64, 65, 66, 69, 70, 73, 74, 75, 76, 77, 78, 79, 80, 81),
                patterns=_DRUM),
)
"""Sounds of no class, rendered as the negative label: General MIDI programs and percussion keys
that no class recipe uses, leaving out those a listener could take for a class (acoustic and
electric pianos, clean electric guitars, fretless and acoustic bass, viola, string sections,
muted and massed trumpets, English horn, piccolo, recorder, pan flute, shakuhachi, ocarina, shanai,
celesta, music box, tinkle bell, agogo, and the ride bell next to the cowbell)."""
