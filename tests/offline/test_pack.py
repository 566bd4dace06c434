"""The training pack: prepared training clips as a small Opus corpus that ``prepare`` reads back."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_fsd import REPO_ROOT, TINY_CONFIG, TinyDataset, tiny_overrides

from offline.cli import main
from offline.datasets import manifest_clip_id, read_dataset
from offline.pack import PACK_RATE_HZ, loudest_stretch, pack_training_set
from offline.preprocess import load_index, prepare_cache
from rtag.audio_io import load_audio
from rtag.bundle import read_bundle
from rtag.config import MelConfig
from rtag.logmel import LogMel


@pytest.fixture(scope="module")
def manifest_corpus(tiny_fsd: TinyDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny clips as a manifest corpus with folds, sources and licences, prepared."""
    root = tmp_path_factory.mktemp("manifest")
    rows = []
    for number, (fname, label) in enumerate(sorted(tiny_fsd.train_labels.items())):
        path = tiny_fsd.root / "FSDKaggle2018.audio_train" / fname
        rows.append({"path": str(path), "label": label, "split": "train", "fold": str(number % 2),
                     "source": f"source-{label}", "license": "CC0"})
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    prepare_cache(read_dataset("manifest", root / "manifest.csv"), root / "cache", progress=False)
    return root


def test_the_loudest_stretch_is_where_the_sound_is() -> None:
    audio = np.zeros(10_000, dtype=np.float32)
    audio[6_000:6_500] = 0.5
    stretch = loudest_stretch(audio, 1_000)
    assert stretch.shape == (1_000,) and np.count_nonzero(stretch) == 500
    assert loudest_stretch(audio, 20_000) is audio


def test_a_pack_holds_every_training_clip_coded_small_and_prepares_back(manifest_corpus: Path, tmp_path: Path) -> None:
    clips = [clip for clip in load_index(manifest_corpus / "cache") if clip.split == "train"]
    origin = {manifest_clip_id(row["path"]): row for row in csv.DictReader((manifest_corpus / "manifest.csv").open())}
    report = pack_training_set(clips, tmp_path / "pack", sample_rate_hz=44100, max_clip_s=1.5,
                               compression_level=0.9, origin=origin, settings={"config": "tiny"})

    rows = list(csv.DictReader((tmp_path / "pack" / "manifest.csv").open()))
    assert [row["label"] for row in rows] == [clip.label for clip in clips]
    assert [row["fold"] for row in rows] == [str(clip.fold) for clip in clips]
    assert {row["source"] for row in rows} == {f"source-{clip.label}" for clip in clips}
    assert report.clips == len(clips) and report.cut == sum(clip.samples > 1.5 * 44100 for clip in clips) > 0
    raw_bytes = sum(min(clip.samples, 66150) for clip in clips) * 2  # 16-bit PCM of the same stretches
    assert report.audio_bytes < raw_bytes / 8
    assert json.loads((tmp_path / "pack" / "pack.json").read_text())["clips"] == len(clips)

    mel = LogMel(MelConfig())
    for clip, row in zip(clips, rows):
        info = sf.info(tmp_path / "pack" / row["path"])
        assert (info.format, info.subtype, info.samplerate) == ("OGG", "OPUS", PACK_RATE_HZ)
        coded = load_audio(tmp_path / "pack" / row["path"], 44100)
        original = loudest_stretch(np.asarray(clip.load()), 66150)
        assert abs(coded.shape[0] - original.shape[0]) < 0.01 * 44100
        n = min(coded.shape[0], original.shape[0])
        a, b = (mel(torch.from_numpy(x[None, :n].copy())).numpy() for x in (original, coded))
        loud = a > a.max() - 40  # the bands that carry the sound
        assert np.median(np.abs(a - b)[loud]) < 3.0, f"{row['path']}: the coded clip's spectrum is far from the original's"

    records = read_dataset("manifest", tmp_path / "pack" / "manifest.csv")
    prepared = prepare_cache(records, tmp_path / "cache", progress=False)
    assert prepared.cached == len(clips) and not prepared.skipped


def test_the_pack_command_writes_the_configs_training_clips(manifest_corpus: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    settings = tiny_overrides(manifest_corpus / "manifest.csv", tmp_path, **{"data.cache_dir": manifest_corpus / "cache",
                                                                          "data.layout": "manifest"})
    overrides = [part for setting in settings for part in ("--set", setting)]
    assert main(["pack", str(TINY_CONFIG), *overrides, "--out", str(tmp_path / "pack"), "--max-clip-s", "2"]) == 0
    assert "packed" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "pack" / "manifest.csv").open()))
    assert rows and all(row["license"] == "CC0" and row["source"].startswith("source-") for row in rows)
    assert main(["pack", str(TINY_CONFIG), *overrides, "--out", str(tmp_path / "bad"), "--compression-level", "2"]) != 0
    assert "compression_level must be within [0, 1], not 2.0" in capsys.readouterr().err


@pytest.mark.slow
def test_the_script_trains_and_exports_a_bundle_from_a_pack(manifest_corpus: Path, tmp_path: Path) -> None:
    clips = [clip for clip in load_index(manifest_corpus / "cache") if clip.split == "train"]
    pack_training_set(clips, tmp_path / "pack", sample_rate_hz=44100, max_clip_s=3.0, compression_level=0.9)
    env = {**os.environ, "CONFIG": str(TINY_CONFIG), "PRECISION": "fp32", "WORKERS": "1", "WORK": str(tmp_path / "work"),
           "AUDIO_S": "0.001", "SPEC_S": "0.001", "COMB_S": "0.001", "HEAD_CROPS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # python3: this interpreter
    script = REPO_ROOT / "scripts" / "train_from_pack.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path / "pack"), str(tmp_path / "out"), "--set", "train.epochs=3",
                           "--set", "data.layout=manifest"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = read_bundle(tmp_path / "out" / "rtag-comb-2s.rtag")
    assert bundle.config.kind == "comb" and sorted(bundle.labels) == sorted({clip.label for clip in clips})
    for stage in ("audio", "spec"):  # each stage stopped by its time limit after one epoch of three
        rows = list(csv.DictReader((tmp_path / "out" / f"metrics_{stage}.csv").open()))
        assert len(rows) == 1
    assert "stage_time_limit_s 0.001 reached after epoch 1" in done.stderr
