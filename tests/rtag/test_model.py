"""TaggerModel: windows in, probabilities out; whole clips by the papers' test-time procedure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rtag
from rtag.audio_io import load_audio
from rtag.config import ModelConfig, load_yaml
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import TaggerModel, resolve_device
from rtag.networks import build_network
from rtag.tta import geometric_mean, tta_inputs
from tests.conftest import CONFIGS


@pytest.fixture(scope="module")
def tiny_model() -> TaggerModel:
    config = load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)
    torch.manual_seed(2)
    return TaggerModel.from_network(build_network(config), config, FSDKAGGLE2018_LABELS, hop_samples=11025, device="cpu")


def test_predict_returns_a_distribution_per_window(tiny_model: TaggerModel) -> None:
    audio = (0.1 * np.random.default_rng(0).standard_normal((3, 22050))).astype(np.float32)
    probs = tiny_model.predict(audio)
    assert probs.shape == (3, 41) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(tiny_model.predict(audio[1]), probs[1:2], atol=1e-6)


def test_predict_rejects_a_window_of_the_wrong_length(tiny_model: TaggerModel) -> None:
    with pytest.raises(ValueError, match=r"expected audio shaped \[B, 22050\]"):
        tiny_model.predict(np.zeros((1, 22000), dtype=np.float32))


def test_tag_clip_is_the_geometric_mean_over_test_time_inputs(real_data: Path, real_manifest, tiny_model) -> None:
    clip = load_audio(real_data / real_manifest[0]["path"])
    inputs = tta_inputs(clip, 22050, 5120)
    logs = np.log(np.clip(tiny_model.predict(inputs).astype(np.float64), 1e-7, 1.0))
    expected = geometric_mean(tiny_model.predict(inputs), axis=0)
    assert np.allclose(tiny_model.tag_clip(clip, step_samples=5120, batch_size=7, weighting="equal"), expected, atol=1e-6)
    energy = np.mean(inputs.astype(np.float64) ** 2, axis=1) + 1e-12
    weighted = np.exp(energy @ logs / energy.sum())
    assert np.allclose(tiny_model.tag_clip(clip, step_samples=5120, batch_size=7), weighted / weighted.sum(), atol=1e-6)
    top = tiny_model.top_k(expected, k=3)
    assert [label for label, _ in top] == [FSDKAGGLE2018_LABELS[i] for i in np.argsort(-expected)[:3]]


def test_tag_clip_handles_clips_shorter_than_a_window(tiny_model: TaggerModel) -> None:
    probs = tiny_model.tag_clip(np.ones(3000, dtype=np.float32) * 0.1, step_samples=5120)
    assert probs.shape == (41,) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_load_model_without_a_bundled_default_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rtag.model.DEFAULT_BUNDLE", tmp_path / "absent.rtag")
    with pytest.raises(rtag.BundleError, match="no default model is bundled"):
        rtag.load_model()


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("toaster")


def test_predict_refuses_nan_samples(tiny_model: TaggerModel) -> None:
    audio = np.zeros((2, tiny_model.window_samples), np.float32)
    audio[1, 5] = np.inf
    with pytest.raises(ValueError, match="audio holds 1 NaN or infinite samples"):
        tiny_model.predict(audio)


def test_the_default_hop_is_51200_samples_or_the_window_when_the_window_is_shorter() -> None:
    tiny = load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)
    network = build_network(tiny)
    assert TaggerModel.from_network(network, tiny, FSDKAGGLE2018_LABELS, device="cpu").hop_samples == 22050
    assert rtag.load_model(device="cpu").hop_samples == 51200
