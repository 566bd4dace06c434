"""prepare: 40 dB silence trimming, a resumable cache, and corrupt clips reported and counted."""

from __future__ import annotations

import csv
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from tiny_fsd import TinyDataset

from offline.datasets import ClipRecord, read_dataset
from offline.preprocess import load_index, prepare_cache, trim_silence
from rtag.audio_io import load_audio


def test_trim_cuts_leading_and_trailing_silence_like_librosa(real_data: Path, real_manifest: list[dict[str, str]]) -> None:
    row = next(r for r in real_manifest if r["label"] == "Bark")
    audio = load_audio(real_data / row["path"])
    padded = np.concatenate([np.zeros(44100, np.float32), audio, np.zeros(30000, np.float32)])
    trimmed, silent = trim_silence(padded, 40.0)
    expected, _ = librosa.effects.trim(padded, top_db=40.0)
    assert not silent
    np.testing.assert_array_equal(trimmed, expected)
    assert trimmed.shape[0] <= audio.shape[0] + 2048  # the added silence is gone (to a frame)


def test_trim_keeps_a_silent_clip_whole_and_flags_it() -> None:
    silence = np.zeros(5000, np.float32)
    trimmed, silent = trim_silence(silence, 40.0)
    assert silent and trimmed.shape == silence.shape
    untouched, flagged = trim_silence(np.ones(10, np.float32), None)
    assert not flagged and untouched.shape == (10,)


def _records(folder: Path, count: int) -> list[ClipRecord]:
    rng = np.random.default_rng(0)
    records = []
    for i in range(count):
        path = folder / f"clip{i}.wav"
        sf.write(path, rng.uniform(-0.5, 0.5, 4410).astype(np.float32), 44100)
        records.append(ClipRecord(clip_id=path.name, path=path, label="a" if i % 2 else "b", split="train"))
    return records


def test_corrupt_clip_is_reported_by_name_skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _records(tmp_path, 4)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"this is not audio at all")
    records.append(ClipRecord(clip_id="broken.wav", path=bad, label="a", split="train"))
    records.append(ClipRecord(clip_id="missing.wav", path=tmp_path / "missing.wav", label="b", split="train"))
    report = prepare_cache(records, tmp_path / "cache", progress=False)
    assert report.cached == 4 and len(report.skipped) == 2
    assert {clip for clip, _ in report.skipped} == {"broken.wav", "missing.wav"}
    err = capsys.readouterr().err
    assert "broken.wav" in err and "missing.wav: file not found" in err
    with open(tmp_path / "cache" / "skipped.csv") as handle:
        assert {row["clip_id"] for row in csv.DictReader(handle)} == {"broken.wav", "missing.wav"}
    assert {c.clip_id for c in load_index(tmp_path / "cache")} == {f"clip{i}.wav" for i in range(4)}


def test_prepare_resumes_and_reuses_finished_clips(tmp_path: Path) -> None:
    records = _records(tmp_path, 6)
    first = prepare_cache(records[:3], tmp_path / "cache", progress=False)
    assert (first.cached, first.reused) == (3, 0)
    (tmp_path / "cache" / "audio" / "train" / "clip1.wav.npy").unlink()  # lost when the run was killed
    second = prepare_cache(records, tmp_path / "cache", progress=False)
    assert (second.cached, second.reused) == (4, 2)
    index = {c.clip_id: c for c in load_index(tmp_path / "cache")}
    assert set(index) == {r.clip_id for r in records}
    np.testing.assert_allclose(index["clip1.wav"].load(), load_audio(records[1].path), atol=1e-4)


def test_cache_refuses_other_settings(tmp_path: Path) -> None:
    records = _records(tmp_path, 1)
    prepare_cache(records, tmp_path / "cache", top_db=40.0, progress=False)
    with pytest.raises(ValueError, match="use another data.cache_dir"):
        prepare_cache(records, tmp_path / "cache", top_db=60.0, progress=False)


def test_load_index_says_to_run_prepare(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run `python -m offline prepare` first"):
        load_index(tmp_path)


def test_fsdkaggle2018_layout_is_prepared_with_the_corrupt_clip_skipped(tiny_fsd: TinyDataset, tmp_path: Path) -> None:
    records = read_dataset("fsdkaggle2018", tiny_fsd.root)
    report = prepare_cache(records, tmp_path / "cache", workers=2, progress=False)
    assert [clip for clip, _ in report.skipped] == [tiny_fsd.corrupt]
    clips = load_index(tmp_path / "cache")
    assert len(clips) == len(records) - 1
    assert all(0 < c.samples <= c.raw_samples for c in clips)
