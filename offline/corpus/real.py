"""Real recorded clips (the ``manifest.csv`` of the real-data folder) and their group-disjoint split.

A *recording group* is the finest unit that may share a microphone, room, performer or
instrument with another clip. Where the manifest's ``group`` column is filled (the ``clips2/``
part: one UrbanSound8K Freesound recording, one drum kit, one Philharmonia instrument, ...) it is
the group; where it is empty (the ``clips/`` part) the group is derived from the source:

    esc50           the Freesound uploader, read from ``ESC50_ATTRIBUTION.txt`` ("... by ramagochi [CC-BY]"),
                    because one uploader's recordings share equipment and often a session (two
                    Fireworks recordings, Freesound 119647 and 119648, are by one uploader); without
                    that file, the Freesound recording an excerpt was cut from
                    (``esc50_4-182395-A-0`` -> 182395)
    weresax         the microphone (``..._cnd.wav`` condenser, ``..._dnm.wav`` dynamic)
    drum-samples    the kit folder (``drum-samples/Kit3/kick.mp3`` -> Kit3)
    anything else   the whole source (one instrument, one session: jrhodes, body_percussion)

Whole groups go to one side, so no group is in both ``train`` and ``heldout``.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REAL_DATA_ENV = "RTAG_REAL_DATA"
"""Environment variable naming the real-data folder."""

REQUIRED_COLUMNS = ("path", "label", "quality", "source", "license")

ESC50_ATTRIBUTION = "ESC50_ATTRIBUTION.txt"
_ESC50_NAME = re.compile(r"esc50_\d+-(\d+)-[A-Z]-\d+")
_ESC50_CREDIT = re.compile(r"^(\S+) <- .* by (.+?) \[[^\]]*\]\s*$")
_WERESAX_MIC = re.compile(r"_(cnd|dnm)\.\w+$")
_DRUM_KIT = re.compile(r"drum-samples/([^/]+)/")


class RealDataError(ValueError):
    """The real-data manifest is malformed; the message names the file, row and column."""


@dataclass(frozen=True)
class RealClip:
    """One real clip.

    path: absolute path of the audio file.
    label: class name or the negative label.
    quality: ``strong``, ``weak`` or ``synthetic`` as in the real-data manifest.
    source: recording-group id (see module docstring), e.g. ``esc50/182395`` or ``us8k/125791``.
    license: licence text from the manifest.
    """

    path: Path
    label: str
    quality: str
    source: str
    license: str


def find_real_data(explicit: str | Path | None, repo_root: Path) -> Path | None:
    """The real-data folder: ``explicit`` if given, else ``$RTAG_REAL_DATA``, else
    ``<repo>/../shared/data/real`` (or ``<repo>/../../shared/data/real`` for a worktree one level
    deeper); None when the chosen folder has no ``manifest.csv``."""
    chosen = explicit or os.environ.get(REAL_DATA_ENV)
    candidates = [Path(chosen)] if chosen else [repo_root.parent / "shared" / "data" / "real",
                                                repo_root.parent.parent / "shared" / "data" / "real"]
    return next((folder for folder in candidates if (folder / "manifest.csv").is_file()), None)


def read_esc50_uploaders(folder: Path) -> dict[str, str]:
    """Clip path (relative to ``folder``) -> Freesound uploader, from ``ESC50_ATTRIBUTION.txt``;
    empty when the file is absent."""
    credits = folder / ESC50_ATTRIBUTION
    if not credits.is_file():
        return {}
    uploaders = {}
    for line in credits.read_text(encoding="utf-8").splitlines():
        match = _ESC50_CREDIT.match(line.strip())
        if match:
            uploaders[match.group(1)] = match.group(2).strip()
    return uploaders


def recording_source(source: str, relative_path: str, original: str, uploader: str | None = None) -> str:
    """Recording-source id of one clip (see module docstring); ``uploader`` is the Freesound
    uploader of an ESC-50 clip where known."""
    if source == "esc50" and uploader:
        return f"esc50/{uploader}"
    if source == "esc50":
        match = _ESC50_NAME.search(relative_path)
        if match:
            return f"esc50/{match.group(1)}"
    if source == "weresax":
        match = _WERESAX_MIC.search(original)
        if match:
            return f"weresax/{match.group(1)}"
    if source == "drum-samples":
        match = _DRUM_KIT.search(original)
        if match:
            return f"drum-samples/{match.group(1)}"
    return source


def read_real_manifest(folder: Path, repeats: list[str] | None = None) -> list[RealClip]:
    """Read ``folder/manifest.csv``; raise ``RealDataError`` for a missing column or file, or a
    file listed twice with different labels.

    repeats: where given, receives one message per row that repeats an earlier row's file and
        label; such a row is read once.
    """
    manifest = folder / "manifest.csv"
    uploaders = read_esc50_uploaders(folder)
    with open(manifest, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise RealDataError(f"{manifest}: missing column(s) {missing}")
        clips: dict[Path, RealClip] = {}
        for row_number, row in enumerate(reader, start=2):
            path = folder / row["path"]
            if not path.is_file():
                raise RealDataError(f"{manifest}:{row_number}: file not found: {path}")
            if path in clips:
                if clips[path].label != row["label"]:
                    raise RealDataError(f"{manifest}:{row_number}: {row['path']} listed again with label "
                                        f"{row['label']!r}, first as {clips[path].label!r}")
                if repeats is not None:
                    repeats.append(f"{manifest}:{row_number}: {row['path']} repeats an earlier row; read once")
                continue
            source = (row.get("group") or "").strip() or recording_source(
                row["source"], row["path"], row.get("original") or "", uploaders.get(row["path"]))
            clips[path] = RealClip(path, row["label"], row["quality"], source, row["license"])
    return list(clips.values())


def drop_scarce_labels(clips: list[RealClip], min_clips: int,
                       keep: set[str]) -> tuple[list[RealClip], dict[str, int]]:
    """Leave out the clips of labels with fewer than ``min_clips`` clips, except labels in
    ``keep`` (those with other data, such as a render recipe). Returns the remaining clips and
    label -> clip count of the labels left out."""
    counts = Counter(clip.label for clip in clips)
    scarce = {label: count for label, count in sorted(counts.items()) if count < min_clips and label not in keep}
    return [clip for clip in clips if clip.label not in scarce], scarce


def split_real_clips(clips: list[RealClip], heldout_fraction: float, seed: int,
                     all_heldout_labels: frozenset[str] = frozenset()) -> dict[Path, str]:
    """Assign each clip ``"train"`` or ``"heldout"`` by whole recording group.

    heldout_fraction: target share of each label's clips in ``heldout``. Sources are visited in a
        seeded order; a source moves to ``heldout`` when that brings every label it holds closer
        to the target and leaves each of those labels at least one training group, so a label
        with a single group keeps all its clips in ``train``.
    seed: order of the visit.
    all_heldout_labels: labels whose clips all go to ``heldout`` (with their whole sources).
    Returns path -> split. No source appears on both sides.
    """
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for clip in clips:
        by_source[clip.source][clip.label] += 1
    totals = Counter(clip.label for clip in clips)
    target = {label: heldout_fraction * count for label, count in totals.items()}
    train_sources = Counter(label for counts in by_source.values() for label in counts)
    heldout_counts: Counter[str] = Counter()
    heldout: set[str] = {s for s, counts in by_source.items() if set(counts) & all_heldout_labels}
    order = sorted(set(by_source) - heldout)
    np.random.default_rng(seed).shuffle(order)
    for source in order:
        counts = by_source[source]
        closer = all(heldout_counts[label] + count / 2.0 < target[label] for label, count in counts.items())
        keeps_training = all(train_sources[label] > 1 for label in counts)
        if closer and keeps_training:
            heldout.add(source)
            heldout_counts.update(counts)
            train_sources.subtract(counts.keys())
    return {clip.path: ("heldout" if clip.source in heldout else "train") for clip in clips}
