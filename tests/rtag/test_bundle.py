"""Model bundles: round trip, and a clear error for every kind of bad file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from rtag.bundle import FORMAT_VERSION, BundleError, _metadata_digest, read_bundle, read_metadata, save_bundle
from rtag.config import ModelConfig, load_yaml
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import TaggerModel, load_model
from rtag.networks import build_network
from tests.conftest import CONFIGS


@pytest.fixture(scope="module")
def tiny_config() -> ModelConfig:
    return load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)


@pytest.fixture()
def network(tiny_config: ModelConfig) -> torch.nn.Module:
    torch.manual_seed(1)
    net = build_network(tiny_config)
    # move BatchNorm statistics away from their defaults so the round trip covers them
    net.train()
    with torch.no_grad():
        net(0.1 * torch.randn(8, tiny_config.window_samples))
    return net.eval()


@pytest.fixture()
def bundle_path(tmp_path: Path, network: torch.nn.Module, tiny_config: ModelConfig) -> Path:
    return save_bundle(
        tmp_path / "tiny.rtag",
        network,
        tiny_config,
        FSDKAGGLE2018_LABELS,
        hop_samples=11025,
        provenance={"data": "random init", "metrics": {"map3": 0.0}},
    )


def rewrite_metadata(path: Path, resign: bool = True, **changes: str) -> Path:
    """Copy a bundle with some metadata fields replaced (tensors kept); ``resign`` recomputes the
    metadata checksum, as a tool that means the change would (so later checks are reached)."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    metadata.update(changes)
    if resign:
        metadata["metadata_sha256"] = _metadata_digest(metadata)
    out = path.with_name("edited.rtag")
    save_file(tensors, str(out), metadata=metadata)
    return out


def test_round_trip_keeps_weights_labels_and_audio_parameters(
    bundle_path: Path, network: torch.nn.Module, tiny_config: ModelConfig
) -> None:
    bundle = read_bundle(bundle_path)
    assert bundle.config == tiny_config
    assert bundle.labels == FSDKAGGLE2018_LABELS
    assert bundle.hop_samples == 11025
    assert bundle.format_version == FORMAT_VERSION
    assert bundle.provenance["data"] == "random init"
    assert bundle.provenance["metrics"] == {"map3": 0.0}
    assert "rtag_version" in bundle.provenance and "created_utc" in bundle.provenance
    reference = network.state_dict()
    assert set(bundle.state_dict) == set(reference)
    assert all(torch.equal(bundle.state_dict[k], reference[k]) for k in reference)

    audio = (0.1 * np.random.default_rng(0).standard_normal((2, tiny_config.window_samples))).astype(np.float32)
    loaded = load_model(bundle_path, device="cpu")
    direct = TaggerModel.from_network(network, tiny_config, FSDKAGGLE2018_LABELS, device="cpu")
    assert np.array_equal(loaded.predict(audio), direct.predict(audio))
    assert (loaded.window_samples, loaded.hop_samples) == (22050, 11025)


def test_float16_weights_halve_the_file_and_stay_close(
    tmp_path: Path, bundle_path: Path, network: torch.nn.Module, tiny_config: ModelConfig
) -> None:
    half = save_bundle(tmp_path / "half.rtag", network, tiny_config, FSDKAGGLE2018_LABELS, weights_dtype="float16")
    assert half.stat().st_size < 0.6 * bundle_path.stat().st_size
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, tiny_config.window_samples))).astype(np.float32)
    assert np.abs(load_model(half, "cpu").predict(audio) - load_model(bundle_path, "cpu").predict(audio)).max() < 1e-2


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"absent\.rtag: bundle file not found"):
        read_bundle(tmp_path / "absent.rtag")


def test_truncated_file_is_reported(bundle_path: Path) -> None:
    data = bundle_path.read_bytes()
    bundle_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"tiny\.rtag: not a readable rtag bundle, truncated or corrupt"):
        read_bundle(bundle_path)


def test_flipped_weight_byte_fails_the_checksum(bundle_path: Path) -> None:
    data = bytearray(bundle_path.read_bytes())
    data[-100] ^= 0xFF
    bundle_path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch"):
        read_bundle(bundle_path)


@pytest.mark.parametrize("field", ["labels", "hop_samples", "config"])
def test_a_flipped_bit_in_the_metadata_fails_its_checksum(bundle_path: Path, field: str) -> None:
    value = read_metadata(bundle_path)[field]
    position = len(value) // 2
    flipped = value[:position] + chr(ord(value[position]) ^ 0x02) + value[position + 1 :]
    edited = rewrite_metadata(bundle_path, resign=False, **{field: flipped})
    with pytest.raises(BundleError, match=r"edited\.rtag: bundle metadata is corrupt \(checksum mismatch\)"):
        read_bundle(edited)


def test_a_format_1_bundle_without_a_metadata_checksum_still_loads(bundle_path: Path) -> None:
    with safe_open(str(bundle_path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    del metadata["metadata_sha256"]
    metadata["format_version"] = "1"
    old = bundle_path.with_name("format1.rtag")
    save_file(tensors, str(old), metadata=metadata)
    assert read_bundle(old).format_version == 1


def test_non_bundle_files_are_rejected(tmp_path: Path) -> None:
    garbage = tmp_path / "noise.rtag"
    garbage.write_bytes(b"\x00\x01not a model" * 50)
    with pytest.raises(BundleError, match=r"noise\.rtag: not a readable rtag bundle"):
        read_bundle(garbage)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(BundleError, match="not an rtag bundle"):
        read_bundle(plain)


def test_newer_format_names_the_version(bundle_path: Path) -> None:
    newer = rewrite_metadata(bundle_path, format_version=str(FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match=rf"newer rtag \(bundle format {FORMAT_VERSION + 1}"):
        read_metadata(newer)


def test_label_count_must_match_the_network(bundle_path: Path) -> None:
    edited = rewrite_metadata(bundle_path, labels=json.dumps(["Bark", "Meow"]))
    with pytest.raises(BundleError, match="2 labels for a network with 41 outputs"):
        read_bundle(edited)


def test_unknown_config_key_is_named(bundle_path: Path) -> None:
    config = json.loads(read_metadata(bundle_path)["config"])
    config["mel"]["colour"] = "blue"
    edited = rewrite_metadata(bundle_path, config=json.dumps(config))
    with pytest.raises(BundleError, match=r"edited\.rtag \(config\): unknown key 'mel\.colour'"):
        read_bundle(edited)


def test_weights_of_another_architecture_are_rejected(bundle_path: Path) -> None:
    config = json.loads(read_metadata(bundle_path)["config"])
    config["head_units"] = [64, 16]
    edited = rewrite_metadata(bundle_path, config=json.dumps(config))
    with pytest.raises(BundleError, match="weights do not match the architecture"):
        read_bundle(edited).build_network()


def test_save_rejects_wrong_label_count(tmp_path: Path, network: torch.nn.Module, tiny_config: ModelConfig) -> None:
    with pytest.raises(BundleError, match="3 labels for a network with 41 outputs"):
        save_bundle(tmp_path / "x.rtag", network, tiny_config, ["a", "b", "c"])
    assert not (tmp_path / "x.rtag").exists()
