"""The FSDKaggle2018 label vocabulary (DCASE 2018 Task 2), spelled as the dataset spells it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "FSDKAGGLE2018_LABELS", "OTHER_DISPLAY_NAME", "OTHER_LABEL", "SILENCE_DISPLAY_NAME", "display_label", "top_labels",
]

OTHER_LABEL = "_other"
"""The class a model may have for sounds outside its classes; machine formats keep this name."""

OTHER_DISPLAY_NAME = "other sound"
"""How :data:`OTHER_LABEL` is shown to people (console, tables, event lines)."""

SILENCE_DISPLAY_NAME = "silence"
"""What people are shown instead of labels for a silent window (below ``silence_threshold_dbfs``)."""

FSDKAGGLE2018_LABELS: tuple[str, ...] = (
    "Acoustic_guitar",
    "Applause",
    "Bark",
    "Bass_drum",
    "Burping_or_eructation",
    "Bus",
    "Cello",
    "Chime",
    "Clarinet",
    "Computer_keyboard",
    "Cough",
    "Cowbell",
    "Double_bass",
    "Drawer_open_or_close",
    "Electric_piano",
    "Fart",
    "Finger_snapping",
    "Fireworks",
    "Flute",
    "Glockenspiel",
    "Gong",
    "Gunshot_or_gunfire",
    "Harmonica",
    "Hi-hat",
    "Keys_jangling",
    "Knock",
    "Laughter",
    "Meow",
    "Microwave_oven",
    "Oboe",
    "Saxophone",
    "Scissors",
    "Shatter",
    "Snare_drum",
    "Squeak",
    "Tambourine",
    "Tearing",
    "Telephone",
    "Trumpet",
    "Violin_or_fiddle",
    "Writing",
)


def top_labels(probs: np.ndarray, labels: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most probable (label, probability) pairs of a probability vector, best first."""
    probs = np.asarray(probs)
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]


def display_label(label: str) -> str:
    """``label`` as shown to people: ``_other`` becomes "other sound", other labels are unchanged."""
    return OTHER_DISPLAY_NAME if label == OTHER_LABEL else label
