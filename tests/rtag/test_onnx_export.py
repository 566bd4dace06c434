"""ONNX export: the graph from raw audio to probabilities matches torch, and carries metadata."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rtag.bundle import save_bundle
from rtag.cli import main
from rtag.config import ModelConfig, load_yaml
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import TaggerModel
from rtag.networks import build_network
from rtag.onnx_export import export_onnx, read_onnx_metadata
from tests.conftest import CONFIGS

# float32 graphs computed in a different order: probabilities agree to well below 1e-5
PARITY_ATOL = 1e-5


def trained_looking_model(name: str, highpass_hz: float | None = None) -> TaggerModel:
    """A model of the given config (with the rumble filter at ``highpass_hz`` if given) whose
    BatchNorm statistics have moved off their defaults."""
    config = dataclasses.replace(load_yaml(CONFIGS / "model" / f"{name}.yaml", ModelConfig), highpass_hz=highpass_hz)
    torch.manual_seed(3)
    network = build_network(config).train()
    with torch.no_grad():
        network(0.1 * torch.randn(8, config.window_samples))
    return TaggerModel.from_network(network.eval(), config, FSDKAGGLE2018_LABELS, hop_samples=51200, device="cpu")


@pytest.mark.parametrize(("name", "highpass_hz"), [("comb_tiny", None), ("comb_2s", None), ("comb_2s", 30.0)])
def test_onnx_runtime_matches_torch_on_real_audio(
    tmp_path: Path, name: str, highpass_hz: float | None, real_data: Path, real_manifest: list[dict[str, str]]
) -> None:
    from rtag.audio_io import load_audio
    from rtag.tta import tta_inputs

    model = trained_looking_model(name, highpass_hz)
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    clip = load_audio(real_data / real_manifest[0]["path"])
    windows = tta_inputs(clip, model.window_samples, model.window_samples // 2)[:3]
    got = session.run(["probabilities"], {"audio": windows})[0]
    assert got.shape == (len(windows), 41)
    assert np.abs(got - model.predict(windows)).max() < PARITY_ATOL


def test_metadata_carries_labels_and_audio_parameters(tmp_path: Path) -> None:
    model = trained_looking_model("comb_tiny")
    facts = read_onnx_metadata(export_onnx(model, tmp_path / "m.onnx"))
    assert json.loads(facts["labels"]) == list(FSDKAGGLE2018_LABELS)
    assert (int(facts["sample_rate_hz"]), int(facts["window_samples"]), int(facts["hop_samples"])) == (
        44100,
        22050,
        51200,
    )
    assert json.loads(facts["config"])["kind"] == "comb"


def test_reading_metadata_of_a_foreign_file_names_it(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match=r"junk\.onnx"):
        read_onnx_metadata(junk)


def test_export_command_writes_a_loadable_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = trained_looking_model("comb_tiny")
    bundle = save_bundle(tmp_path / "m.rtag", model.network, model.config, model.labels, hop_samples=11025)
    out = tmp_path / "m.onnx"
    assert main(["export", str(bundle), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert int(read_onnx_metadata(out)["hop_samples"]) == 11025
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(("kind", "highpass_hz"), [("audio", None), ("spec", None), ("comb", None), ("comb", 30.0)])
def test_host_front_end_graph_matches_torch(tmp_path: Path, kind: str, highpass_hz: float | None) -> None:
    from rtag.engines import OnnxEngine

    comb = trained_looking_model("comb_tiny", highpass_hz)
    config = ModelConfig(**{**comb.config.__dict__, "kind": kind})
    torch.manual_seed(4)
    network = build_network(config).train()
    with torch.no_grad():
        network(0.1 * torch.randn(8, config.window_samples))
    model = TaggerModel.from_network(network.eval(), config, FSDKAGGLE2018_LABELS, device="cpu")
    path = export_onnx(model, tmp_path / f"{kind}.onnx", front_end="host")
    engine = OnnxEngine(path, providers=["CPUExecutionProvider"])
    assert engine.input_names == network.input_names
    assert read_onnx_metadata(path)["front_end"] == "host"
    audio = (0.3 * np.random.default_rng(6).standard_normal((4, config.window_samples))).astype(np.float32)
    assert np.abs(engine.predict(audio) - model.predict(audio)).max() < PARITY_ATOL


def test_unknown_front_end_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="front_end must be one of graph, host"):
        export_onnx(trained_looking_model("comb_tiny"), tmp_path / "m.onnx", front_end="device")


def test_int8_export_needs_calibration_audio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = trained_looking_model("comb_tiny")
    bundle = save_bundle(tmp_path / "m.rtag", model.network, model.config, model.labels, hop_samples=11025)
    assert main(["export", str(bundle), "-o", str(tmp_path / "m.int8.onnx"), "--precision", "int8"]) == 2
    assert "needs --calibration" in capsys.readouterr().err
    missing = tmp_path / "nowhere"
    assert main(["export", str(bundle), "-o", str(tmp_path / "m.int8.onnx"), "--precision", "int8",
                 "--calibration", str(missing)]) == 2
    assert "nowhere: no such calibration file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("front_end", ["graph", "host"])
def test_export_leaves_the_model_in_eval_mode(tmp_path: Path, front_end: str) -> None:
    model = trained_looking_model("comb_tiny")
    export_onnx(model, tmp_path / "m.onnx", front_end=front_end)
    assert not any(module.training for module in model.network.modules())
