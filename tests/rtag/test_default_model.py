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


def test_the_demo_recording_is_tagged_with_the_classes_it_contains(model: rtag.TaggerModel) -> None:
    events = json.loads(DEMO.with_suffix(".json").read_text())["events"]
    clip = load_audio(DEMO, model.sample_rate_hz)
    for event in events:
        start, end = (int(event[k] * model.sample_rate_hz) for k in ("start_s", "end_s"))
        probs = model.tag_clip(clip[start:end])
        top3 = [label for label, _ in model.top_k(probs, 3)]
        assert event["label"] in top3, f"{event['label']} at {event['start_s']} s tagged {top3}"


def test_the_readme_command_tags_the_demo_with_the_bundled_model() -> None:
    result = run_cli(["tag", str(DEMO), "--timeline", "--format", "jsonl"], timeout_s=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    events = json.loads(DEMO.with_suffix(".json").read_text())["events"]
    tops = {row["top"][0]["label"] for row in rows}
    assert sum(e["label"] in tops for e in events) >= len(events) - 1, tops


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
    assert sum(hits.values()) >= 0.8 * len(files), [p for p, hit in hits.items() if not hit]


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
