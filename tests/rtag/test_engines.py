"""Engines: torch and ONNX Runtime behind one interface, with the provider that really runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rtag.config import ModelConfig, load_yaml
from rtag.engines import Engine, OnnxEngine, TorchEngine, as_engine, create_engine
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import TaggerModel
from rtag.networks import build_network
from tests.conftest import CONFIGS


@pytest.fixture(scope="module")
def tiny_model() -> TaggerModel:
    config = load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)
    torch.manual_seed(5)
    network = build_network(config).train()
    with torch.no_grad():
        network(0.1 * torch.randn(8, config.window_samples))
    return TaggerModel.from_network(network.eval(), config, FSDKAGGLE2018_LABELS, hop_samples=11025, device="cpu")


def test_onnx_engine_agrees_with_torch_engine(tiny_model: TaggerModel, tmp_path: Path) -> None:
    onnx_engine = create_engine(tiny_model, "onnx", onnx_dir=tmp_path)
    torch_engine = create_engine(tiny_model, "torch")
    assert isinstance(onnx_engine, OnnxEngine) and isinstance(torch_engine, TorchEngine)
    audio = (0.1 * np.random.default_rng(1).standard_normal((5, 22050))).astype(np.float32)
    assert np.abs(onnx_engine.predict(audio) - torch_engine.predict(audio)).max() < 1e-5
    for engine in (onnx_engine, torch_engine):
        assert isinstance(engine, Engine)
        assert (engine.labels, engine.window_samples, engine.hop_samples, engine.sample_rate_hz) == (
            FSDKAGGLE2018_LABELS,
            22050,
            11025,
            44100,
        )


def test_onnx_engine_reports_the_provider_that_runs(tiny_model: TaggerModel, tmp_path: Path) -> None:
    engine = create_engine(tiny_model, "onnx", onnx_dir=tmp_path)
    assert engine.providers, "the session runs on at least one provider"
    assert engine.name == f"onnxruntime-{engine.providers[0]}-fp32"
    if not torch.cuda.is_available():
        assert engine.providers == ("CPUExecutionProvider",)
    cpu_only = OnnxEngine(engine.path, providers=["CPUExecutionProvider"])
    assert cpu_only.providers == ("CPUExecutionProvider",)


def test_onnx_engine_runs_one_window_in_a_spinning_session_and_batches_in_one_that_sleeps(
    tiny_model: TaggerModel, tmp_path: Path
) -> None:
    engine = OnnxEngine(create_engine(tiny_model, "onnx", onnx_dir=tmp_path).path, providers=["CPUExecutionProvider"])
    audio = (0.1 * np.random.default_rng(2).standard_normal((3, 22050))).astype(np.float32)
    batched = engine.predict(audio)
    one_by_one = np.concatenate([engine.predict(audio[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(one_by_one, batched, atol=1e-6)
    spinning = {
        batch: engine._session_for(batch).get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
        for batch in (1, 3)
    }
    assert spinning == {1: "1", 3: "0"}
    assert engine._session_for(1) is engine._session_for(1) and engine._session_for(3) is engine.session


def test_onnx_engine_rejects_windows_of_the_wrong_length(tiny_model: TaggerModel, tmp_path: Path) -> None:
    engine = create_engine(tiny_model, "onnx", onnx_dir=tmp_path)
    with pytest.raises(ValueError, match=r"expected audio shaped \[batch, 22050\]"):
        engine.predict(np.zeros((1, 100), dtype=np.float32))


def test_unknown_engine_kind_is_named(tiny_model: TaggerModel) -> None:
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'"):
        create_engine(tiny_model, "tensorrt")


def test_precisions_are_checked_per_engine(tiny_model: TaggerModel) -> None:
    with pytest.raises(ValueError, match="engine 'torch' has no precision 'int8'"):
        create_engine(tiny_model, "torch", "int8")
    with pytest.raises(ValueError, match="engine 'onnx' has no precision 'bf16'"):
        create_engine(tiny_model, "onnx", "bf16")


def test_int8_needs_a_graph_and_says_how_to_make_one(tiny_model: TaggerModel) -> None:
    with pytest.raises(ValueError, match="no int8 graph for this in-memory model.*--precision int8"):
        create_engine(tiny_model, "onnx", "int8")


def test_bf16_torch_engine_stays_close_to_fp32(tiny_model: TaggerModel) -> None:
    audio = (0.1 * np.random.default_rng(4).standard_normal((6, 22050))).astype(np.float32)
    fp32 = create_engine(tiny_model, "torch").predict(audio)
    bf16_engine = create_engine(tiny_model, "torch", "bf16")
    bf16 = bf16_engine.predict(audio)
    assert bf16_engine.name == "torch-cpu-bf16" and bf16.dtype == np.float32
    assert np.allclose(bf16.sum(axis=1), 1.0, atol=1e-4)
    assert np.abs(bf16 - fp32).max() < 0.05


def test_as_engine_wraps_models_and_passes_engines_through(
    tiny_model: TaggerModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rtag.engines.cpu_has_amx", lambda: False)
    auto = as_engine(tiny_model)  # an in-memory model has no int8 graph: ONNX Runtime fp32 on this CPU
    assert isinstance(auto, OnnxEngine) and auto.precision == "fp32"
    assert isinstance(as_engine(tiny_model, "torch", "bf16"), TorchEngine)
    onnx_engine = create_engine(tiny_model, "onnx", onnx_dir=tmp_path)
    assert as_engine(onnx_engine) is onnx_engine
    with pytest.raises(TypeError):
        as_engine(object())


def test_stream_tagger_runs_on_the_onnx_engine(tiny_model: TaggerModel, tmp_path: Path) -> None:
    from rtag import ArraySource, StreamTagger

    engine = create_engine(tiny_model, "onnx", onnx_dir=tmp_path)
    audio = (0.1 * np.random.default_rng(2).standard_normal(22050 + 4 * 11025)).astype(np.float32)
    windows = []
    with StreamTagger(engine, source=ArraySource(audio, sample_rate_hz=44100), on_window=windows.append) as stream:
        stats = stream.run_for()
    assert [w.start_sample for w in windows] == [0, 11025, 22050, 33075, 44100]
    assert stats.windows_dropped == 0
    expected = tiny_model.predict(np.stack([audio[s : s + 22050] for s in range(0, 44101, 11025)]))
    assert np.abs(np.stack([w.probabilities for w in windows]) - expected).max() < 1e-5


def test_streams_of_one_model_share_its_engine_and_the_export_is_removed_at_exit(tiny_model: TaggerModel) -> None:
    from rtag import StreamTagger

    silence = np.zeros(22050, np.float32)
    first, second = StreamTagger(tiny_model, silence), StreamTagger(tiny_model, silence)
    assert first.engine is second.engine is tiny_model.engine()  # one ONNX export, not one per stream
    code = (
        "import torch, rtag\n"
        "from rtag.config import ModelConfig, load_yaml\n"
        "from rtag.labels import FSDKAGGLE2018_LABELS\n"
        "from rtag.networks import build_network\n"
        f"config = load_yaml({str(CONFIGS / 'model' / 'comb_tiny.yaml')!r}, ModelConfig)\n"
        "model = rtag.TaggerModel.from_network(build_network(config), config, FSDKAGGLE2018_LABELS, device='cpu')\n"
        "print(model.engine(\"onnx\").path)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    exported = Path(done.stdout.strip())
    assert exported.name == "model.onnx" and exported.parent.name.startswith("rtag-onnx-")
    assert not exported.parent.exists()
