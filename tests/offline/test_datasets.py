"""Readers of the FSDKaggle2018, Kaggle and manifest layouts; labels come from the data."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_fsd import TinyDataset

from offline.datasets import DatasetError, label_vocabulary, read_dataset


def test_fsdkaggle2018_layout_lists_train_and_scored_test_clips(tiny_fsd: TinyDataset) -> None:
    records = read_dataset("fsdkaggle2018", tiny_fsd.root)
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test"]
    assert len(train) == len(tiny_fsd.train_labels) + 1  # the corrupt clip is listed; prepare reports it
    assert [(r.clip_id, r.label, r.usage) for r in test] == list(tiny_fsd.test_rows)
    assert all(r.path.is_file() for r in records)
    assert all(r.manually_verified is not None for r in train)
    assert label_vocabulary(records) == tuple(sorted(set(tiny_fsd.train_labels.values())))


def test_kaggle_layout_reads_train_csv_and_unlabelled_test_clips(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("fname,label,manually_verified\na.wav,Bark,1\nb.wav,Meow,0\n")
    (tmp_path / "sample_submission.csv").write_text("fname,label\nt.wav,Bark Meow Cough\n")
    records = read_dataset("kaggle", tmp_path)
    assert [(r.clip_id, r.label, r.split, r.manually_verified) for r in records] == [
        ("a.wav", "Bark", "train", True),
        ("b.wav", "Meow", "train", False),
        ("t.wav", None, "test", None),
    ]
    assert records[0].path == tmp_path / "audio_train" / "a.wav"
    assert records[2].path == tmp_path / "audio_test" / "t.wav"


def test_manifest_reads_folds_splits_and_own_classes(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,fold,split,usage,source\nx/one.flac,whistle,0,train,,a\nx/two.flac,hum,1,,,b\ny/3.flac,hum,,heldout,Public,c\n"
    )
    records = read_dataset("manifest", manifest)
    assert [(r.clip_id, r.label, r.fold, r.split, r.usage) for r in records] == [
        ("x__one.flac", "whistle", 0, "train", None),
        ("x__two.flac", "hum", 1, "train", None),
        ("y__3.flac", "hum", None, "test", "Public"),
    ]
    assert records[0].path == tmp_path / "x" / "one.flac"
    assert label_vocabulary(records) == ("hum", "whistle")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("path,klass\na.wav,x\n", "missing column"),
        ("path,label\na.wav,\n", "row 2: empty 'label'"),
        ("path,label,split\na.wav,x,validation\n", "split must be train, test or heldout"),
        ("path,label,fold\na.wav,x,first\n", "fold must be an integer"),
        ("path,label\na.wav,x\na.wav,y\n", "listed twice"),
    ],
)
def test_malformed_manifest_errors_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    manifest = tmp_path / "bad.csv"
    manifest.write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        read_dataset("manifest", manifest)
    assert "bad.csv" in str(info.value)


def test_missing_metadata_and_unknown_layout_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="train_post_competition.csv: file not found"):
        read_dataset("fsdkaggle2018", tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset layout 'zenodo'"):
        read_dataset("zenodo", tmp_path)
