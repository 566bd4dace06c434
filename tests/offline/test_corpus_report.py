"""corpus-report: held-out renders and real recordings scored apart, overall and per class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline.cli import main
from offline.config import DataConfig, ExperimentConfig
from offline.corpus.report import REAL, RENDERS, heldout_report
from tests.fixtures.csv_files import write_csv


@pytest.fixture
def run(tmp_path: Path) -> ExperimentConfig:
    manifest = tmp_path / "corpus" / "manifest.csv"
    write_csv(
        manifest,
        ("path", "label", "split", "source", "license", "quality", "fold"),
        [
            ("render/train/Cello/a.wav", "Cello", "train", "fluidr3/p042", "MIT", "rendered", 0),
            ("render/heldout/Cello/b.wav", "Cello", "heldout", "timgm6mb/p042", "GPL", "rendered", ""),
            ("render/heldout/Flute/c.wav", "Flute", "heldout", "timgm6mb/p073", "GPL", "rendered", ""),
            ("real/x.flac", "Bark", "heldout", "esc50", "CC BY", "strong", ""),
            ("real/y.flac", "_other", "heldout", "esc50", "CC BY", "weak", ""),
        ],
    )
    run_dir = tmp_path / "run"
    write_csv(
        run_dir / "predictions" / "comb.csv",
        ("clip_id", "label", "usage", "pred1", "pred2", "pred3"),
        [
            ("render__heldout__Cello__b.wav", "Cello", "", "Cello", "Flute", "Bark"),  # 1, top-1
            ("render__heldout__Flute__c.wav", "Flute", "", "Cello", "Flute", "Bark"),  # 1/2
            ("real__x.flac", "Bark", "", "_other", "Cello", "Flute"),  # 0
            ("real__y.flac", "_other", "", "_other", "Bark", "Cello"),  # 1, top-1
        ],
    )
    return ExperimentConfig(name="corpus", run_dir=str(run_dir), data=DataConfig(layout="manifest", root=str(manifest)))


def test_renders_and_real_clips_are_scored_apart(run: ExperimentConfig) -> None:
    results = heldout_report(run)
    renders, real = results["groups"][RENDERS], results["groups"][REAL]
    assert (renders["clips"], renders["map3"], renders["top1"]) == (2, pytest.approx(0.75), 0.5)
    assert (real["clips"], real["map3"], real["top1"]) == (2, pytest.approx(0.5), 0.5)
    assert renders["per_class"]["Flute"] == {"clips": 1, "map3": pytest.approx(0.5), "top1": 0.0}
    assert set(real["per_class"]) == {"Bark", "_other"}
    report = Path(run.run_dir) / "report"
    assert json.loads((report / "heldout.json").read_text())["groups"][REAL]["clips"] == 2
    markdown = (report / "heldout.md").read_text()
    assert f"| {RENDERS} | 2 | 0.750 | 0.500 |" in markdown and "| Flute | 1 | 0.500 | 0.000 |" in markdown
    assert results["real_by_origin"]["esc50"]["clips"] == 2 and "| esc50 | 2 | 0.500 | 0.500 |" in markdown
    assert (report / "heldout_confusion_renders.png").stat().st_size > 0
    assert (report / "heldout_confusion_real.png").stat().st_size > 0


def test_other_clips_with_a_class_ranked_first_are_counted_as_false_positives(run: ExperimentConfig) -> None:
    predictions = Path(run.run_dir) / "predictions" / "comb.csv"
    predictions.write_text(predictions.read_text().replace("real__y.flac,_other,,_other,Bark", "real__y.flac,_other,,Bark,_other"))
    results = heldout_report(run)
    assert results["other_false_positives"] == {"clips": 1, "class_first": 1, "classes": {"Bark": 1}}
    assert "a class ranked first on 1 of the 1 held-out `_other` clips (Bark 1)." in (
        Path(run.run_dir) / "report" / "heldout.md").read_text()


def test_a_missing_prediction_set_is_named(run: ExperimentConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FileNotFoundError, match=r"predictions/spec\.csv: no such prediction set"):
        heldout_report(run, "spec")
    config = tmp_path / "exp.yaml"
    config.write_text(f"name: corpus\nrun_dir: {run.run_dir}\ndata: {{layout: manifest, root: {run.data.root}}}\n")
    assert main(["corpus-report", str(config)]) == 0
    assert f"| {REAL} | 2 | 0.500 | 0.500 |" in capsys.readouterr().out
