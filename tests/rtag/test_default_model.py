"""The bundled default model: it loads, tags the demo recording and held-out renders, and its int8
graph agrees with it on real recordings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rtag
from rtag.audio_io import load_audio
from rtag.engines import create_engine
from rtag.model import DEFAULT_BUNDLE
from rtag.quantize import int8_graph_path
from rtag.tta import tag_clip
from tests.conftest import REPO_ROOT
from tests.fixtures.cli_runner import run_cli

DEMO = REPO_ROOT / "examples" / "audio" / "demo.wav"
# classes the corpus renders from General MIDI: each has held-out TimGM6mb renders
RENDERED_CLASSES = (
    "Acoustic_guitar", "Applause", "Bass_drum", "Cello", "Chime", "Clarinet", "Cowbell", "Double_bass",
    "Electric_piano", "Flute", "Glockenspiel", "Gunshot_or_gunfire", "Harmonica", "Hi-hat", "Oboe",
    "Saxophone", "Snare_drum", "Tambourine", "Telephone", "Trumpet", "Violin_or_fiddle",
)  # fmt: skip


@pytest.fixture(scope="module")
def model() -> rtag.TaggerModel:
    return rtag.load_model(device="cpu")


def test_the_default_model_ships_in_the_package_and_loads(model: rtag.TaggerModel) -> None:
    assert DEFAULT_BUNDLE.stat().st_size <= 15e6
    assert model.config.kind == "comb"
    assert (model.sample_rate_hz, model.window_samples, model.hop_samples) == (44100, 88200, 51200)
    assert set(RENDERED_CLASSES) <= set(model.labels) and "_other" in model.labels
    assert model.provenance["heldout"]["TimGM6mb renders"]["clips"] > 0
    assert int8_graph_path(DEFAULT_BUNDLE).is_file()


def _events_found(rows: list[dict], events: list[dict], rank: int) -> set[str]:
    """Labels of the events that are among the top ``rank`` of a window overlapping them by >= 0.5 s."""
    found = set()
    for event in events:
        for row in rows:
            overlap_s = min(row["end_s"], event["end_s"]) - max(row["start_s"], event["start_s"])
            if overlap_s >= 0.5 and event["label"] in [t["label"] for t in row["top"][:rank]]:
                found.add(event["label"])
    return found


def test_the_readme_command_tags_the_demo_with_the_classes_it_contains() -> None:
    result = run_cli(["tag", str(DEMO), "--timeline", "--format", "jsonl"], timeout_s=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["start_s"] for row in rows[:2]] == [0.0, pytest.approx(51200 / 44100, abs=1e-4)]
    events = json.loads(DEMO.with_suffix(".json").read_text())["events"]
    # the demo is rendered from the held-out sound font; its telephone ring is the model's known
    # miss (docs/model-card.md), the other four classes are found
    assert _events_found(rows, events, rank=3) >= {"Trumpet", "Snare_drum", "Applause", "Glockenspiel"}
    assert _events_found(rows, events, rank=1) >= {"Snare_drum", "Applause", "Glockenspiel"}


@pytest.mark.slow
def test_rtag_tag_ranks_held_out_renders_of_each_known_class_in_the_top_3(tmp_path: Path) -> None:
    corpus = tmp_path / "renders"
    build = subprocess.run(
        [sys.executable, "-m", "offline.corpus", "--out", str(corpus), "--no-real",
         "--set", "train_clips_per_class=0", "--set", "heldout_clips_per_class=2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    files = sorted((corpus / "render" / "heldout").rglob("timgm6mb_*.wav"))
    assert {f.parent.name for f in files} == set(RENDERED_CLASSES)
    result = run_cli(["tag", *map(str, files), "--format", "jsonl"], timeout_s=900)
    assert result.returncode == 0, result.stderr
    hits = {}
    for line in result.stdout.splitlines():
        row = json.loads(line)
        hits[row["path"]] = Path(row["path"]).parent.name in [t["label"] for t in row["top"]]
    assert len(hits) == len(files)
    # measured: 33 of 42 (79 %); held-out renders are mAP@3 0.618 overall (docs/model-card.md)
    assert sum(hits.values()) >= 0.7 * len(files), [p for p, hit in hits.items() if not hit]


@pytest.mark.slow
def test_int8_agrees_with_fp32_on_real_recordings(
    model: rtag.TaggerModel, real_data: Path, real_manifest: list[dict[str, str]]
) -> None:
    int8 = create_engine(model, "onnx", "int8")
    rows = real_manifest[:: max(1, len(real_manifest) // 80)]
    fp32_top, int8_top = [], []
    for row in rows:
        clip = load_audio(real_data / row["path"], model.sample_rate_hz)
        fp32_top.append(int(np.argmax(tag_clip(model.predict, clip, model.window_samples, model.hop_samples))))
        int8_top.append(int(np.argmax(tag_clip(int8.predict, clip, model.window_samples, model.hop_samples))))
    agreement = float(np.mean(np.array(fp32_top) == np.array(int8_top)))
    assert agreement >= 0.95, f"int8 top-1 agrees with fp32 on {agreement:.1%} of {len(rows)} real clips"
