"""``prepare``: decode every clip once, trim leading and trailing silence, and cache the result.

Trimming follows :func:`librosa.effects.trim` with ``top_db=40`` (the papers cut "silent parts at
the beginning and at the end ... that do not exceed a volume of 40 decibel"): frame RMS over
2048-sample frames with a 512-sample hop, in dB relative to the clip's loudest frame; the clip is
cut to the first and last frame louder than -40 dB. A clip that is silent throughout is kept
whole (and counted), so that no test clip loses its prediction.

The cache is ``<cache_dir>/audio/<split>/<clip_id>.npy`` (float32 mono at the model rate, read
with memory mapping during training), ``clips.jsonl`` (one line per finished clip, so an
interrupted ``prepare`` resumes where it stopped), ``index.csv`` (all cached clips with their
labels and durations) and ``skipped.csv`` (clips that could not be decoded, with the reason).
Log-mel spectrograms are not cached: the networks compute them from the (augmented) raw audio,
which keeps every augmentation consistent between both inputs by construction.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys
from collections.abc import Sequence
from multiprocessing import get_context
from pathlib import Path

import librosa
import numpy as np
from tqdm import tqdm

from offline.checkpoint import atomic_write_bytes
from offline.datasets import ClipRecord
from rtag.audio_io import AudioFileError, load_audio

__all__ = ["CachedClip", "PrepareReport", "load_index", "prepare_cache", "trim_silence"]

INDEX_COLUMNS = ("clip_id", "split", "label", "usage", "manually_verified", "fold", "samples", "raw_samples", "cache_file")


@dataclasses.dataclass(frozen=True)
class CachedClip:
    """A prepared clip: its record fields plus the cached audio file and lengths.

    Attributes:
        clip_id, split, label, usage, manually_verified, fold: as in :class:`ClipRecord`.
        cache_path: the ``.npy`` file of trimmed float32 samples.
        samples: length after trimming, in samples.
        raw_samples: length before trimming, in samples (Table 4 reports training minutes).
    """

    clip_id: str
    split: str
    label: str | None
    usage: str | None
    manually_verified: bool | None
    fold: int | None
    cache_path: Path
    samples: int
    raw_samples: int

    def load(self) -> np.ndarray:
        """The trimmed samples (a read-only memory map)."""
        return np.load(self.cache_path, mmap_mode="r")


@dataclasses.dataclass(frozen=True)
class PrepareReport:
    """What ``prepare`` did.

    Attributes:
        cached: clips decoded and written in this run.
        reused: clips already in the cache from an earlier run.
        skipped: ``(clip path, reason)`` for every clip that could not be decoded.
        silent: clips kept untrimmed because they are silent throughout.
    """

    cached: int
    reused: int
    skipped: tuple[tuple[str, str], ...]
    silent: int


def trim_silence(audio: np.ndarray, top_db: float | None) -> tuple[np.ndarray, bool]:
    """Cut leading and trailing audio quieter than ``top_db`` below the peak frame.

    Args:
        audio: 1-D float32 samples.
        top_db: threshold in dB below the loudest frame (40 in the papers); ``None`` returns
            the clip unchanged.

    Returns:
        ``(trimmed, silent)``: ``silent`` is true when nothing exceeds the threshold, in which
        case the clip is returned whole.
    """
    if top_db is None:
        return audio, False
    if not np.any(audio):
        return audio, True
    trimmed, _ = librosa.effects.trim(audio, top_db=top_db, frame_length=2048, hop_length=512)
    if trimmed.shape[0] == 0:
        return audio, True
    return np.ascontiguousarray(trimmed, dtype=np.float32), False


def _cache_path(cache_dir: Path, record: ClipRecord) -> Path:
    return cache_dir / "audio" / record.split / f"{record.clip_id}.npy"


def _prepare_one(task: tuple[ClipRecord, Path, int, float | None]) -> dict[str, object]:
    """Decode, trim and cache one clip; returns its ``clips.jsonl`` entry or the failure."""
    record, target, sample_rate_hz, top_db = task
    try:
        audio = load_audio(record.path, sample_rate_hz)
    except AudioFileError as exc:
        return {"split": record.split, "clip_id": record.clip_id, "error": str(exc)}
    trimmed, silent = trim_silence(audio, top_db)
    buffer = io.BytesIO()
    np.save(buffer, trimmed)
    atomic_write_bytes(target, buffer.getvalue())
    return {
        "split": record.split,
        "clip_id": record.clip_id,
        "samples": int(trimmed.shape[0]),
        "raw_samples": int(audio.shape[0]),
        "silent": silent,
    }


def _check_cache_settings(cache_dir: Path, settings: dict[str, object]) -> None:
    settings_path = cache_dir / "cache.json"
    if settings_path.exists():
        existing = json.loads(settings_path.read_text(encoding="utf-8"))
        if existing != settings:
            raise ValueError(
                f"{settings_path}: the cache was prepared with {existing}, not {settings}; "
                "use another data.cache_dir"
            )
    else:
        atomic_write_bytes(settings_path, json.dumps(settings, indent=2).encode("utf-8"))


def prepare_cache(
    records: Sequence[ClipRecord],
    cache_dir: str | Path,
    sample_rate_hz: int = 44100,
    top_db: float | None = 40.0,
    workers: int = 1,
    progress: bool = True,
) -> PrepareReport:
    """Decode, trim and cache ``records``; resumable, and every failure reported by name.

    Args:
        records: clips to prepare (from :func:`offline.datasets.read_dataset`).
        cache_dir: the cache folder (created if needed).
        sample_rate_hz: the rate clips are resampled to (default 44100).
        top_db: the silence threshold of :func:`trim_silence` (default 40).
        workers: decoding processes (default 1).
        progress: show a tqdm progress bar (default true).

    Returns:
        A :class:`PrepareReport`; ``index.csv`` and ``skipped.csv`` are written in ``cache_dir``.

    Raises:
        ValueError: if ``cache_dir`` was prepared with another rate or threshold.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _check_cache_settings(cache_dir, {"sample_rate_hz": sample_rate_hz, "trim_top_db": top_db})
    log_path = cache_dir / "clips.jsonl"
    done: dict[tuple[str, str], dict[str, object]] = {}
    if log_path.exists():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill: that clip is simply done again
                done[(entry["split"], entry["clip_id"])] = entry
    todo = [
        r for r in records if (r.split, r.clip_id) not in done or not _cache_path(cache_dir, r).exists()
    ]
    reused = len(records) - len(todo)
    tasks = [(r, _cache_path(cache_dir, r), sample_rate_hz, top_db) for r in todo]
    skipped: list[tuple[str, str]] = []
    silent = 0
    with open(log_path, "a", encoding="utf-8") as log, tqdm(
        total=len(tasks), desc="prepare", unit="clip", disable=not progress
    ) as bar:
        if workers > 1:
            pool = get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_prepare_one, tasks, chunksize=4)
        else:
            pool = None
            results = map(_prepare_one, tasks)
        try:
            for entry in results:
                bar.update(1)
                if "error" in entry:
                    tqdm.write(f"skipped: {entry['error']}", file=sys.stderr)
                    skipped.append((str(entry["clip_id"]), str(entry["error"])))
                    continue
                silent += int(bool(entry["silent"]))
                log.write(json.dumps(entry) + "\n")
                log.flush()
                done[(str(entry["split"]), str(entry["clip_id"]))] = entry
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        os.fsync(log.fileno())
    _write_index(cache_dir, records, done)
    _write_skipped(cache_dir, skipped)
    return PrepareReport(cached=len(todo) - len(skipped), reused=reused, skipped=tuple(skipped), silent=silent)


def _write_index(cache_dir: Path, records: Sequence[ClipRecord], done: dict[tuple[str, str], dict[str, object]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for r in records:
        entry = done.get((r.split, r.clip_id))
        if entry is None:
            continue
        writer.writerow(
            [
                r.clip_id,
                r.split,
                r.label or "",
                r.usage or "",
                "" if r.manually_verified is None else int(r.manually_verified),
                "" if r.fold is None else r.fold,
                entry["samples"],
                entry["raw_samples"],
                _cache_path(cache_dir, r).relative_to(cache_dir).as_posix(),
            ]
        )
    atomic_write_bytes(cache_dir / "index.csv", text.getvalue().encode("utf-8"))


def _write_skipped(cache_dir: Path, skipped: Sequence[tuple[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("clip_id", "reason"))
    writer.writerows(skipped)
    atomic_write_bytes(cache_dir / "skipped.csv", text.getvalue().encode("utf-8"))


def load_index(cache_dir: str | Path) -> list[CachedClip]:
    """The clips of a prepared cache (``index.csv``).

    Raises:
        FileNotFoundError: if the cache has not been prepared (the message says to run prepare).
    """
    cache_dir = Path(cache_dir)
    index_path = cache_dir / "index.csv"
    if not index_path.exists():
        raise FileNotFoundError(f"{index_path}: no prepared cache here; run `python -m offline prepare` first")
    with open(index_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        CachedClip(
            clip_id=row["clip_id"],
            split=row["split"],
            label=row["label"] or None,
            usage=row["usage"] or None,
            manually_verified=None if row["manually_verified"] == "" else row["manually_verified"] == "1",
            fold=None if row["fold"] == "" else int(row["fold"]),
            cache_path=cache_dir / row["cache_file"],
            samples=int(row["samples"]),
            raw_samples=int(row["raw_samples"]),
        )
        for row in rows
    ]
