"""The committed demo recording matches its timeline: sound inside each event, near silence
between them. Rendering it again needs fluidsynth and the held-out font."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from offline.corpus.config import CorpusConfig
from offline.corpus.demo import DEMO_FONT, DEMO_SEGMENTS, render_demo
from offline.corpus.fonts import missing_requirements
from rtag.labels import FSDKAGGLE2018_LABELS

DEMO_WAV = Path(__file__).resolve().parents[2] / "examples" / "audio" / "demo.wav"


def _rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-12))


def _check_timeline(audio: np.ndarray, rate: int, events: list[dict]) -> None:
    assert [event["label"] for event in events] == [label for label, _, _ in DEMO_SEGMENTS]
    assert all(event["label"] in FSDKAGGLE2018_LABELS for event in events)
    bounds = [0.0] + [t for event in events for t in (event["start_s"], event["end_s"])] + [audio.size / rate]
    assert bounds == sorted(bounds)
    for event, gap_start in zip(events, bounds[0::2]):
        inside = audio[round(event["start_s"] * rate):round(event["end_s"] * rate)]
        gap = audio[round(gap_start * rate) + rate // 10:round(event["start_s"] * rate) - rate // 10]
        assert _rms_db(inside) - _rms_db(gap) > 30.0, event["label"]


def test_committed_demo_is_44k1_pcm16_and_matches_its_timeline() -> None:
    info = sf.info(str(DEMO_WAV))
    assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
    assert 10.0 <= info.duration <= 20.0 and DEMO_WAV.stat().st_size < 2_000_000
    document = json.loads(DEMO_WAV.with_suffix(".json").read_text())
    assert document["duration_s"] == pytest.approx(info.duration, abs=1e-3)
    audio, rate = sf.read(str(DEMO_WAV), dtype="float32")
    _check_timeline(audio, rate, document["events"])


def test_demo_renders_again_to_the_committed_timeline() -> None:
    config = CorpusConfig()
    missing = missing_requirements([font for font in config.fonts if font.name == DEMO_FONT])
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))
    audio, events = render_demo(config)
    _check_timeline(audio, config.sample_rate_hz, events)
    assert events == json.loads(DEMO_WAV.with_suffix(".json").read_text())["events"]
