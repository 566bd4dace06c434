"""int8 quantization: calibration on real audio, the graph beside its bundle, the int8 engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from rtag.bundle import save_bundle
from rtag.cli import main
from rtag.config import ModelConfig, load_yaml
from rtag.engines import OnnxEngine, TorchEngine, create_engine, describe_engine
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import load_model
from rtag.networks import build_network
from rtag.onnx_export import read_onnx_metadata, write_onnx_metadata
from rtag.quantize import calibration_windows, int8_graph_path
from tests.conftest import CONFIGS


def tiny_bundle(folder: Path, seed: int) -> Path:
    """A comb_tiny bundle whose BatchNorm statistics have moved off their defaults."""
    config = load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)
    torch.manual_seed(seed)
    network = build_network(config).train()
    with torch.no_grad():
        network(0.1 * torch.randn(8, config.window_samples))
    return save_bundle(folder / "tiny.rtag", network.eval(), config, FSDKAGGLE2018_LABELS, hop_samples=11025)


def some_clips(real_data: Path, real_manifest: list[dict[str, str]], count: int) -> list[Path]:
    return [real_data / row["path"] for row in real_manifest[:: max(1, len(real_manifest) // count)][:count]]


def test_calibration_windows_cover_the_files_and_report_unreadable_ones(
    tmp_path: Path, real_data: Path, real_manifest: list[dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    model = load_model(tiny_bundle(tmp_path, 1), device="cpu")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    files = some_clips(real_data, real_manifest, 6)
    windows, counts = calibration_windows([*files, broken], model, max_windows=12)
    assert windows.shape == (12, model.window_samples) and windows.dtype == np.float32
    assert counts == {"files": 7, "files_unreadable": 1, "windows": 12}
    assert "broken.wav" in caplog.text
    again, _ = calibration_windows([*files, broken], model, max_windows=12)
    assert np.array_equal(windows, again), "calibration is seeded"
    with pytest.raises(ValueError, match="no calibration audio"):
        calibration_windows([broken], model)


def test_int8_export_beside_the_bundle_runs_as_the_onnx_int8_engine(
    tmp_path: Path, real_data: Path, real_manifest: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tiny_bundle(tmp_path, 2)
    files = some_clips(real_data, real_manifest, 8)
    out = int8_graph_path(bundle)
    assert out.name == "tiny.int8.onnx"
    code = main(["export", str(bundle), "-o", str(out), "--precision", "int8", "--calibration-windows", "16",
                 "--calibration", *map(str, files)])
    assert code == 0 and "int8, calibrated on 16 windows from 8 files" in capsys.readouterr().out
    facts = read_onnx_metadata(out)
    assert facts["precision"] == "int8" and facts["front_end"] == "host"
    assert json.loads(facts["calibration"])["windows"] == 16
    assert facts["weight_bits"] == "7"
    graph = onnx.load(str(out)).graph
    weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights and all(np.abs(w).max() <= 64 for w in weights), "7-bit weights cannot overflow without VNNI"

    model = load_model(bundle, device="cpu")
    engine = create_engine(model, "onnx", "int8")
    assert isinstance(engine, OnnxEngine) and engine.name.endswith("-int8")
    from rtag.audio_io import load_audio
    from rtag.tta import tta_inputs

    windows = np.concatenate(
        [tta_inputs(load_audio(f, 44100), model.window_samples, model.hop_samples) for f in files]
    )
    fp32 = model.predict(windows)
    int8 = engine.predict(windows)
    assert np.allclose(int8.sum(axis=1), 1.0, atol=1e-4)
    # int8 keeps the ranking and stays close on average; a random tiny network is sensitive to its
    # inputs, so single probabilities of quiet (peak-normalised) windows move by up to about 0.08
    assert np.mean(int8.argmax(axis=1) == fp32.argmax(axis=1)) >= 0.95
    assert np.abs(int8 - fp32).mean() < 0.005


def test_an_int8_graph_of_other_weights_is_refused(
    tmp_path: Path, real_data: Path, real_manifest: list[dict[str, str]]
) -> None:
    first = tiny_bundle(tmp_path / "a", 3)
    assert main(["export", str(first), "-o", str(int8_graph_path(first)), "--precision", "int8",
                 "--calibration-windows", "4", "--calibration", *map(str, some_clips(real_data, real_manifest, 2))]) == 0
    other = tiny_bundle(tmp_path / "b", 4)
    int8_graph_path(first).rename(int8_graph_path(other))
    with pytest.raises(ValueError, match="made from other weights"):
        create_engine(load_model(other, device="cpu"), "onnx", "int8")


def test_auto_runs_the_int8_graph_when_the_bundle_has_one_and_fp32_when_not(
    tmp_path: Path, real_data: Path, real_manifest: list[dict[str, str]], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("rtag.engines.cpu_has_amx", lambda: False)  # a CPU without AMX
    bundle = tiny_bundle(tmp_path, 6)
    without = create_engine(load_model(bundle, device="cpu"))
    assert isinstance(without, OnnxEngine) and (without.precision, without.providers[0]) == ("fp32", "CPUExecutionProvider")
    assert describe_engine(without).startswith("onnx fp32 on CPUExecutionProvider")
    assert main(["export", str(bundle), "-o", str(int8_graph_path(bundle)), "--precision", "int8",
                 "--calibration-windows", "4", "--calibration", *map(str, some_clips(real_data, real_manifest, 2))]) == 0
    model = load_model(bundle, device="cpu")
    chosen = create_engine(model)
    assert isinstance(chosen, OnnxEngine) and chosen.precision == "int8" and chosen.path == int8_graph_path(bundle)
    assert create_engine(model, "onnx").precision == "int8"  # onnx's own choice too
    assert isinstance(create_engine(model, "torch"), TorchEngine)  # an explicit engine wins
    assert create_engine(model, "auto", "fp32").precision == "fp32"  # and so does an explicit precision
    assert isinstance(create_engine(model, "auto", "bf16"), TorchEngine)

    # a graph of other weights beside a bundle is passed over, said, and fp32 runs
    other = tiny_bundle(tmp_path / "other", 7)
    int8_graph_path(bundle).rename(int8_graph_path(other))
    fallback = create_engine(load_model(other, device="cpu"))
    assert isinstance(fallback, OnnxEngine) and fallback.precision == "fp32"
    assert "made from other weights" in caplog.text

    # on a CPU with AMX torch bf16 runs, an int8 graph beside the bundle or not; an explicit precision still wins
    monkeypatch.setattr("rtag.engines.cpu_has_amx", lambda: True)
    int8_graph_path(other).rename(int8_graph_path(bundle))
    amx = create_engine(model)
    assert isinstance(amx, TorchEngine) and amx.precision == "bf16"
    assert describe_engine(amx).startswith("torch bf16 on cpu")
    assert create_engine(model, "auto", "int8").precision == "int8"
    fp32 = create_engine(model, "auto", "fp32")
    assert isinstance(fp32, OnnxEngine) and fp32.precision == "fp32"


def test_a_graph_with_full_range_weights_runs_as_auto_only_on_a_cpu_with_vnni(
    tmp_path: Path, real_data: Path, real_manifest: list[dict[str, str]], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("rtag.engines.cpu_has_amx", lambda: False)
    bundle = tiny_bundle(tmp_path, 8)
    graph = int8_graph_path(bundle)
    assert main(["export", str(bundle), "-o", str(graph), "--precision", "int8",
                 "--calibration-windows", "4", "--calibration", *map(str, some_clips(real_data, real_manifest, 2))]) == 0
    facts = read_onnx_metadata(graph)
    del facts["weight_bits"]  # as a graph made with 8-bit weights says
    write_onnx_metadata(graph, facts)
    model = load_model(bundle, device="cpu")

    monkeypatch.setattr("rtag.engines.cpu_has_vnni", lambda: False)
    assert create_engine(model).precision == "fp32"
    assert "full-range 8-bit weights" in caplog.text and "running fp32" in caplog.text
    caplog.clear()
    assert create_engine(model, "onnx", "int8").precision == "int8"  # asked for: run, with the warning
    assert "overflow" in caplog.text

    monkeypatch.setattr("rtag.engines.cpu_has_vnni", lambda: True)
    caplog.clear()
    assert create_engine(model).precision == "int8" and "overflow" not in caplog.text


def test_a_manifest_calibrates_on_its_training_rows_only(
    tmp_path: Path, real_data: Path, real_manifest: list[dict[str, str]]
) -> None:
    model = load_model(tiny_bundle(tmp_path, 5), device="cpu")
    clips = some_clips(real_data, real_manifest, 4)
    manifest = tmp_path / "manifest.csv"
    rows = [f"{clip},{split}" for clip, split in zip(clips, ["train", "train", "heldout", "heldout"])]
    manifest.write_text("path,split\n" + "\n".join(rows) + "\n")
    _, counts = calibration_windows([manifest], model, max_windows=64)
    assert counts["files"] == 2
    (tmp_path / "bad.csv").write_text("file\nx.wav\n")
    with pytest.raises(ValueError, match="bad.csv: a calibration manifest needs a 'path' column"):
        calibration_windows([tmp_path / "bad.csv"], model)
