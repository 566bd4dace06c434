"""prepare -> train -> predict -> evaluate -> export on a tiny FSDKaggle2018-layout dataset of real clips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiny_fsd import TINY_CLASSES, TINY_CONFIG, TinyDataset, tiny_overrides

from offline.cli import main
from offline.metrics import mean_average_precision_at_k, top_k
from rtag.bundle import read_bundle
from rtag.model import TaggerModel


def _cli(command: str, overrides: list[str], *extra: str) -> int:
    args = [command, str(TINY_CONFIG)]
    for item in overrides:
        args += ["--set", item]
    return main(args + list(extra))


@pytest.mark.slow
def test_pipeline_runs_end_to_end_and_scores_its_own_predictions(tiny_fsd: TinyDataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = tiny_overrides(tiny_fsd.root, tmp_path, **{"train.epochs": 2})
    assert _cli("prepare", overrides) == 1  # one clip is unreadable
    out = capsys.readouterr()
    assert "skipped 1 unreadable clips" in out.out
    assert tiny_fsd.corrupt in out.err

    assert _cli("train", overrides) == 0
    run = tmp_path / "run"
    assert json.loads((run / "labels.json").read_text()) == sorted(TINY_CLASSES)
    for stage in ("audio", "spec", "comb"):
        for fold in (0, 1):
            fold_dir = run / stage / f"fold{fold}"
            assert (fold_dir / "best.pt").is_file() and (fold_dir / "last.pt").is_file()
            resolved = yaml.safe_load((fold_dir / "config.yaml").read_text())
            assert resolved["model"]["kind"] == stage and resolved["model"]["num_classes"] == len(TINY_CLASSES)
            rows = [json.loads(line) for line in (fold_dir / "metrics.jsonl").read_text().splitlines()]
            assert [r["epoch"] for r in rows] == [1, 2]
            assert all(np.isfinite(r["val_loss"]) for r in rows)
    with open(run / "folds.csv") as handle:
        folds = list(csv.DictReader(handle))
    assert {r["clip_id"] for r in folds} == set(tiny_fsd.train_labels)  # the corrupt clip is not trained on

    assert _cli("predict", overrides) == 0
    for branch in ("audio", "spec"):
        assert _cli("predict", overrides, "--zero-branch", branch) == 0
    assert _cli("predict", overrides, "--stage", "comb", "--folds", "0", "--step-samples", "22050", "--name", "comb_efficient") == 0
    assert _cli("predict", overrides, "--validation", "--stage", "comb") == 0
    assert _cli("evaluate", overrides) == 0

    # Recompute mAP@3 from the written probabilities and compare with the report.
    labels = json.loads((run / "labels.json").read_text())
    results = json.loads((run / "report" / "results.json").read_text())
    with open(run / "predictions" / "comb.csv") as handle:
        rows = list(csv.DictReader(handle))
    probs = np.load(run / "predictions" / "comb.npy")
    assert probs.shape == (len(tiny_fsd.test_rows), len(labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    ranked = top_k(probs, labels, 3)
    assert [r["pred1"] for r in rows] == [p[0] for p in ranked]
    truth = [r["label"] for r in rows]
    assert truth == [label for _, label, _ in tiny_fsd.test_rows]
    full = mean_average_precision_at_k(ranked, truth)
    public = mean_average_precision_at_k(
        [p for p, r in zip(ranked, rows) if r["usage"] == "Public"], [r["label"] for r in rows if r["usage"] == "Public"]
    )
    assert results["table3"]["comb"]["full"] == pytest.approx(full)
    assert results["table3"]["comb"]["public"] == pytest.approx(public)
    assert results["table3"]["comb"]["public_clips"] + results["table3"]["comb"]["private_clips"] == len(rows)
    assert list(results["table3"]) == ["audio", "spec", "comb_zero-spec", "comb_zero-audio", "comb", "comb_efficient"]
    table4 = {row["name"]: row for row in results["table4"]}
    assert table4["Bark"]["train_samples"] == 6 and table4["Bark"]["train_minutes"] == pytest.approx(0.5, abs=0.01)
    assert len(results["ablation_per_class"]) == 5

    # out-of-fold predictions: every training clip once, scored per fold
    with open(run / "predictions" / "comb_val.csv") as handle:
        val_rows = list(csv.DictReader(handle))
    assert sorted(r["clip_id"] for r in val_rows) == sorted(tiny_fsd.train_labels)
    fold_of = {r["clip_id"]: f"fold{r['fold']}" for r in folds}
    assert all(r["usage"] == fold_of[r["clip_id"]] for r in val_rows)
    validation = results["validation"]["comb_val"]
    for fold in ("fold0", "fold1"):
        mine = [r for r in val_rows if r["usage"] == fold]
        expected = mean_average_precision_at_k([[r["pred1"], r["pred2"], r["pred3"]] for r in mine], [r["label"] for r in mine])
        assert validation["per_fold"][fold] == pytest.approx(expected)
    assert validation["min"] <= validation["avg"] <= validation["max"]

    report = run / "report"
    with open(report / "submission.csv") as handle:
        submission = list(csv.DictReader(handle))
    assert [s["fname"] for s in submission] == [r["clip_id"] for r in rows]
    assert all(len(s["label"].split(" ")) == 3 for s in submission)
    for png in ("training_curves.png", "per_class.png", "confusion_matrix.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| Bark | 6 |" in (report / "results.md").read_text()

    bundle_path = tmp_path / "tiny.rtag"
    onnx_path = tmp_path / "tiny.onnx"
    assert _cli("export", overrides, "--output", str(bundle_path), "--onnx", str(onnx_path)) == 0
    assert onnx_path.stat().st_size > 0
    bundle = read_bundle(bundle_path)
    assert bundle.labels == tuple(labels)
    assert bundle.provenance["stage"] == "comb" and bundle.provenance["test_metrics"]["comb"]["full"] == pytest.approx(full)
    model = TaggerModel.from_bundle(bundle_path, device="cpu")
    clip = np.load(tmp_path / "cache" / "audio" / "test" / f"{rows[0]['clip_id']}.npy")
    assert model.tag_clip(clip, step_samples=11025).shape == (len(labels),)

    # the negative label's prior folded into the last layer: only its output bias moves
    offset_path = tmp_path / "offset.rtag"
    offset = ["augment.negative_label=Bark", "predict.negative_logit_offset=1.5"]
    assert _cli("export", overrides + offset, "--output", str(offset_path)) == 0
    shifted = read_bundle(offset_path)
    assert shifted.provenance["negative_logit_offset"] == 1.5 and bundle.provenance["negative_logit_offset"] == 0.0
    changed = [name for name, tensor in shifted.state_dict.items() if not torch.equal(tensor, bundle.state_dict[name])]
    assert len(changed) == 1 and changed[0].startswith("head.") and changed[0].endswith(".bias")
    difference = (shifted.state_dict[changed[0]] - bundle.state_dict[changed[0]]).numpy()
    np.testing.assert_allclose(difference, np.eye(len(labels))[labels.index("Bark")] * 1.5, atol=1e-6)
    # a rumble filter set at prediction time changes the front end only: same weights, filtered inputs
    filtered_path = tmp_path / "filtered.rtag"
    assert _cli("export", overrides + ["predict.highpass_hz=30"], "--output", str(filtered_path)) == 0
    filtered = read_bundle(filtered_path)
    assert filtered.config.highpass_hz == 30.0 and bundle.config.highpass_hz is None
    assert filtered.provenance["trained_highpass_hz"] is None and filtered.weights_sha256 == bundle.weights_sha256
    filtered_model = TaggerModel.from_bundle(filtered_path, device="cpu")
    rumble = 0.5 * np.sin(2 * np.pi * 4.0 * np.arange(clip.shape[0]) / 44100).astype(np.float32)
    np.testing.assert_allclose(filtered_model.tag_clip(clip + rumble, step_samples=11025),
                               filtered_model.tag_clip(clip, step_samples=11025), atol=0.05)
    # a model without the negative label cannot take the offset; the error names the key
    assert _cli("export", overrides + ["predict.negative_logit_offset=1.0"], "--output", str(tmp_path / "x.rtag")) == 2
    assert "predict.negative_logit_offset" in capsys.readouterr().err
