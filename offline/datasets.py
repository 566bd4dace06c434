"""Readers of labelled clip collections: FSDKaggle2018, the Kaggle layout, and a manifest CSV.

Each reader returns :class:`ClipRecord` rows; nothing is decoded here. The label vocabulary is
taken from the data (:func:`label_vocabulary`), never from a hard-coded list, so the same
pipeline trains on anyone's own classes.

Layouts:

* ``fsdkaggle2018`` (the Zenodo release)::

      <root>/FSDKaggle2018.meta/train_post_competition.csv      fname,label,manually_verified,freesound_id,license
      <root>/FSDKaggle2018.meta/test_post_competition_scoring_clips.csv   fname,label,usage,freesound_id,license
      <root>/FSDKaggle2018.audio_train/<fname>
      <root>/FSDKaggle2018.audio_test/<fname>

  Only the 1600 scored test clips (usage Public or Private) are listed in the scoring CSV; they
  are the test set of Table 3.
* ``kaggle`` (the competition download)::

      <root>/train.csv  fname,label,manually_verified      <root>/audio_train/<fname>
      <root>/sample_submission.csv  fname,label  (optional; test clips without labels)
      <root>/audio_test/<fname>
* ``manifest``: a CSV with ``path,label`` and optional ``fold`` (0-based), ``split``
  (``train``, or ``test``/``heldout`` for evaluation clips; default ``train``) and ``usage``
  columns; paths are relative to the CSV. Other columns are ignored, so the corpus manifest of
  ``build-corpus`` reads as it is.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["ClipRecord", "DatasetError", "label_vocabulary", "manifest_clip_id", "read_dataset"]


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file (and row)."""


@dataclasses.dataclass(frozen=True)
class ClipRecord:
    """One clip of a dataset.

    Attributes:
        clip_id: unique key within its split (the file name for the Kaggle datasets).
        path: the audio file.
        label: the class name, or ``None`` for an unlabelled test clip.
        split: ``"train"`` or ``"test"``.
        usage: test-set part (``"Public"`` / ``"Private"``), ``None`` when unknown.
        manually_verified: whether the label was checked by a person (``None`` when unknown).
        fold: a predefined fold from a manifest, ``None`` for stratified assignment.
    """

    clip_id: str
    path: Path
    label: str | None
    split: str
    usage: str | None = None
    manually_verified: bool | None = None
    fold: int | None = None


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [name for name in required if name not in columns]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(columns)})")
        rows = [dict(row) for row in reader]
    for number, row in enumerate(rows, start=2):
        for name in required:
            if not (row.get(name) or "").strip():
                raise DatasetError(f"{path}: row {number}: empty {name!r}")
    return rows


def _flag(value: str | None, path: Path, number: int) -> bool | None:
    if value is None or value == "":
        return None
    if value.strip() in ("1", "True", "true"):
        return True
    if value.strip() in ("0", "False", "false"):
        return False
    raise DatasetError(f"{path}: row {number}: manually_verified must be 0 or 1, not {value!r}")


def _train_records(train_csv: Path, audio_dir: Path) -> list[ClipRecord]:
    """Training clips of a Kaggle-style CSV (``fname,label[,manually_verified]``)."""
    return [
        ClipRecord(
            clip_id=row["fname"],
            path=audio_dir / row["fname"],
            label=row["label"],
            split="train",
            manually_verified=_flag(row.get("manually_verified"), train_csv, number),
        )
        for number, row in enumerate(_read_csv(train_csv, ("fname", "label")), start=2)
    ]


def _read_fsdkaggle2018(root: Path) -> list[ClipRecord]:
    meta = root / "FSDKaggle2018.meta"
    train_csv = meta / "train_post_competition.csv"
    test_csv = meta / "test_post_competition_scoring_clips.csv"
    records = _train_records(train_csv, root / "FSDKaggle2018.audio_train")
    for number, row in enumerate(_read_csv(test_csv, ("fname", "label", "usage")), start=2):
        if row["usage"] not in ("Public", "Private"):
            raise DatasetError(f"{test_csv}: row {number}: usage must be Public or Private, not {row['usage']!r}")
        records.append(
            ClipRecord(
                clip_id=row["fname"],
                path=root / "FSDKaggle2018.audio_test" / row["fname"],
                label=row["label"],
                split="test",
                usage=row["usage"],
            )
        )
    return records


def _read_kaggle(root: Path) -> list[ClipRecord]:
    train_csv = root / "train.csv"
    records = _train_records(train_csv, root / "audio_train")
    submission_csv = root / "sample_submission.csv"
    if submission_csv.is_file():
        records.extend(
            ClipRecord(clip_id=row["fname"], path=root / "audio_test" / row["fname"], label=None, split="test")
            for row in _read_csv(submission_csv, ("fname",))
        )
    return records


def manifest_clip_id(relative_path: str) -> str:
    """The clip id of a manifest row: its path with folder separators turned into ``__``."""
    return relative_path.replace("\\", "/").replace("/", "__")


def _read_manifest(csv_path: Path) -> list[ClipRecord]:
    records = []
    for number, row in enumerate(_read_csv(csv_path, ("path", "label")), start=2):
        split = (row.get("split") or "train").strip()
        split = "test" if split == "heldout" else split
        if split not in ("train", "test"):
            raise DatasetError(f"{csv_path}: row {number}: split must be train, test or heldout, not {split!r}")
        fold_text = (row.get("fold") or "").strip()
        try:
            fold = int(fold_text) if fold_text else None
        except ValueError:
            raise DatasetError(f"{csv_path}: row {number}: fold must be an integer, not {fold_text!r}") from None
        relative = row["path"].strip()
        records.append(
            ClipRecord(
                clip_id=manifest_clip_id(relative),
                path=csv_path.parent / relative,
                label=row["label"].strip(),
                split=split,
                usage=(row.get("usage") or "").strip() or None,
                fold=fold,
            )
        )
    return records


def read_dataset(layout: str, root: str | Path) -> list[ClipRecord]:
    """All clips of a dataset, train and test.

    Args:
        layout: ``"fsdkaggle2018"``, ``"kaggle"`` or ``"manifest"`` (see the module docstring).
        root: the dataset folder, or the CSV file for ``"manifest"``.

    Raises:
        DatasetError: for an unknown layout, a missing CSV or column, an empty field, a bad
            value, or a clip id listed twice in one split; the message names the file.
    """
    root = Path(root)
    readers = {"fsdkaggle2018": _read_fsdkaggle2018, "kaggle": _read_kaggle, "manifest": _read_manifest}
    if layout not in readers:
        raise DatasetError(f"unknown dataset layout {layout!r} (known: {', '.join(readers)})")
    records = readers[layout](root)
    seen: set[tuple[str, str]] = set()
    for record in records:
        key = (record.split, record.clip_id)
        if key in seen:
            raise DatasetError(f"{root}: clip {record.clip_id!r} is listed twice in the {record.split} split")
        seen.add(key)
    return records


def label_vocabulary(records: Iterable[ClipRecord]) -> tuple[str, ...]:
    """The sorted class names of the training clips (the model's output order)."""
    labels = sorted({r.label for r in records if r.split == "train" and r.label is not None})
    if not labels:
        raise DatasetError("the dataset holds no labelled training clips")
    return tuple(labels)
