"""A tiny dataset in the FSDKaggle2018 layout, written from the real recordings, for the offline tests."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import soundfile as sf

from rtag.audio_io import load_audio

TINY_CLASSES = ("Bark", "Cough", "Hi-hat", "Snare_drum")  # two 5 s classes, two shorter than the window
TRAIN_PER_CLASS = 6
TEST_PER_CLASS = 2
CORRUPT_CLIP = "corrupt0001.wav"


@dataclasses.dataclass(frozen=True)
class TinyDataset:
    """A tiny dataset in the FSDKaggle2018 layout written from the real recordings.

    Attributes:
        root: the dataset root (holds ``FSDKaggle2018.meta/`` and the audio folders).
        train_labels: fname -> label of the readable training clips.
        test_rows: (fname, label, usage) of the test clips.
        corrupt: fname of the undecodable training clip listed in the train CSV.
    """

    root: Path
    train_labels: dict[str, str]
    test_rows: tuple[tuple[str, str, str], ...]
    corrupt: str


def write_fsdkaggle2018(root: Path, real_data: Path, manifest: list[dict[str, str]]) -> TinyDataset:
    """Write WAV copies of a few real clips per class in the FSDKaggle2018 layout under ``root``."""
    meta, audio_train, audio_test = root / "FSDKaggle2018.meta", root / "FSDKaggle2018.audio_train", root / "FSDKaggle2018.audio_test"
    for folder in (meta, audio_train, audio_test):
        folder.mkdir(parents=True)
    train_labels: dict[str, str] = {}
    test_rows: list[tuple[str, str, str]] = []
    counter = 0
    for label in TINY_CLASSES:
        rows = [r for r in manifest if r["label"] == label][: TRAIN_PER_CLASS + TEST_PER_CLASS]
        assert len(rows) == TRAIN_PER_CLASS + TEST_PER_CLASS, f"real data has too few {label} clips"
        for i, row in enumerate(rows):
            counter += 1
            fname = f"{counter:08x}.wav"
            audio = load_audio(real_data / row["path"])
            if i < TRAIN_PER_CLASS:
                sf.write(audio_train / fname, audio, 44100, subtype="PCM_16")
                train_labels[fname] = label
            else:
                sf.write(audio_test / fname, audio, 44100, subtype="PCM_16")
                test_rows.append((fname, label, "Public" if i % 2 == 0 else "Private"))
    (audio_train / CORRUPT_CLIP).write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with open(meta / "train_post_competition.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("fname", "label", "manually_verified", "freesound_id", "license"))
        for fname, label in train_labels.items():
            writer.writerow((fname, label, 1, 0, "CC BY 3.0"))
        writer.writerow((CORRUPT_CLIP, TINY_CLASSES[0], 0, 0, "CC0"))
    with open(meta / "test_post_competition_scoring_clips.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("fname", "label", "usage", "freesound_id", "license"))
        writer.writerows((f, label, usage, 0, "CC BY 3.0") for f, label, usage in test_rows)
    return TinyDataset(root, train_labels, tuple(test_rows), CORRUPT_CLIP)


def tiny_overrides(dataset_root: Path, work: Path, **extra: object) -> list[str]:
    """``--set`` overrides pointing configs/train/tiny.yaml at a dataset and a work folder."""
    items = {
        "data.layout": "fsdkaggle2018",
        "data.root": str(dataset_root),
        "data.cache_dir": str(work / "cache"),
        "run_dir": str(work / "run"),
        **extra,
    }
    return [f"{key}={value}" for key, value in items.items()]


REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO_ROOT / "configs" / "train" / "tiny.yaml"
