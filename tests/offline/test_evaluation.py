"""evaluate: Table 3 splits, Table 4 counts and the submission from hand-written predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from offline.config import DataConfig, ExperimentConfig
from offline.evaluation import evaluate_run
from offline.preprocess import INDEX_COLUMNS
from tests.fixtures.csv_files import write_csv


@pytest.fixture
def run(tmp_path: Path) -> ExperimentConfig:
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    train = [("t1", "a", 44100 * 60), ("t2", "a", 44100 * 30), ("t3", "b", 44100 * 6)]
    write_csv(
        cache / "index.csv",
        INDEX_COLUMNS,
        [(c, "train", label, "", 1, "", n, n, f"audio/train/{c}.npy") for c, label, n in train],
    )
    (run_dir).mkdir(parents=True)
    (run_dir / "labels.json").write_text(json.dumps(["a", "b", "c"]))
    header = ("clip_id", "label", "usage", "pred1", "pred2", "pred3")
    write_csv(
        run_dir / "predictions" / "comb.csv",
        header,
        [
            ("x1", "a", "Public", "a", "b", "c"),  # 1
            ("x2", "b", "Public", "a", "b", "c"),  # 1/2
            ("x3", "c", "Private", "a", "b", "c"),  # 1/3
            ("x4", "a", "Private", "b", "c", ""),  # 0
            ("x5", "", "", "c", "a", "b"),  # unlabelled: in the submission only
        ],
    )
    write_csv(run_dir / "predictions" / "audio.csv", header, [("x1", "a", "Public", "b", "a", "c")])
    return ExperimentConfig(run_dir=str(run_dir), data=DataConfig(cache_dir=str(cache)))


def test_scores_splits_counts_and_submission_from_the_prediction_files(run: ExperimentConfig) -> None:
    results = evaluate_run(run, plots=False)
    comb = results["table3"]["comb"]
    assert comb["public"] == pytest.approx(0.75) and comb["private"] == pytest.approx(1 / 6)
    assert comb["full"] == pytest.approx((1 + 0.5 + 1 / 3) / 4)
    assert (comb["public_clips"], comb["private_clips"], comb["full_clips"]) == (2, 2, 4)
    assert results["table3"]["audio"]["private"] is None and results["table3"]["audio"]["full"] == 0.5
    assert results["primary"] == "comb"
    assert results["table4"] == [
        {"name": "a", "train_samples": 2, "train_minutes": pytest.approx(1.5), "map3": pytest.approx(0.5)},
        {"name": "b", "train_samples": 1, "train_minutes": pytest.approx(0.1), "map3": pytest.approx(0.5)},
        {"name": "c", "train_samples": 0, "train_minutes": 0.0, "map3": pytest.approx(1 / 3)},
    ]
    assert set(results["ablation_per_class"]) == {"cnn-audio", "cnn-comb"}
    report = Path(run.run_dir) / "report"
    with open(report / "submission.csv") as handle:
        submission = list(csv.DictReader(handle))
    assert submission[1] == {"fname": "x2", "label": "a b c"} and submission[3] == {"fname": "x4", "label": "b c"}
    assert submission[4] == {"fname": "x5", "label": "c a b"}
    markdown = (report / "results.md").read_text()
    assert "| comb | 0.750 | 0.167 | 0.458 | 4 |" in markdown and "| a | 2 | 1.5 | 0.500 |" in markdown


def test_evaluate_without_predictions_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run `python -m offline predict` first"):
        evaluate_run(ExperimentConfig(run_dir=str(tmp_path)), plots=False)
