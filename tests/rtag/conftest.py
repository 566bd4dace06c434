"""Fixtures of the streaming tests: a tiny random-weight model and the virtual microphone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rtag.bundle import save_bundle
from rtag.config import ModelConfig, load_yaml
from rtag.labels import FSDKAGGLE2018_LABELS
from rtag.model import TaggerModel
from rtag.networks import build_network
from tests.conftest import CONFIGS, real_data_dir
from tests.fixtures.virtual_mic import VirtualMic, VirtualMicUnavailable, running_virtual_mic

TINY_HOP_SAMPLES = 11025


@pytest.fixture(scope="session")
def tiny_model() -> TaggerModel:
    """comb_tiny (0.5 s windows) with random weights and a 0.25 s hop, on the CPU."""
    config = load_yaml(CONFIGS / "model" / "comb_tiny.yaml", ModelConfig)
    torch.manual_seed(0)
    return TaggerModel.from_network(
        build_network(config), config, FSDKAGGLE2018_LABELS, hop_samples=TINY_HOP_SAMPLES, device="cpu"
    )


@pytest.fixture()
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test, then the previous count: two intra-op threads fighting
    other jobs for two shared cores make a tiny batch take hundreds of milliseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_model: TaggerModel) -> Path:
    """``tiny_model`` saved as a model bundle file."""
    path = tmp_path_factory.mktemp("bundle") / "tiny.rtag"
    return save_bundle(path, tiny_model.network, tiny_model.config, tiny_model.labels, hop_samples=tiny_model.hop_samples)


@pytest.fixture(scope="session")
def virtual_mic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualMic]:
    """A private PulseAudio daemon whose null-sink monitor is the default input device.

    Fails when PulseAudio is missing or broken in CI (``CI=true``); skips with the reason
    elsewhere.
    """
    try:
        with running_virtual_mic(tmp_path_factory.mktemp("pulse")) as mic:
            yield mic
    except VirtualMicUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"virtual microphone unavailable in CI: {exc}")
        pytest.skip(f"virtual microphone unavailable: {exc}")


@pytest.fixture(scope="session")
def bark_clip() -> tuple[np.ndarray, str]:
    """A real dog-bark recording (44.1 kHz mono) from the real recordings, with its file name.

    Skips with the reason when the real recordings are absent.
    """
    folder = real_data_dir()
    if folder is None:
        pytest.skip("real recordings not found: set RTAG_REAL_DATA or place them at ../shared/data/real")
    path = folder / "clips" / "esc50_4-182395-A-0.flac"
    audio, rate_hz = sf.read(str(path), dtype="float32")
    assert rate_hz == 44100 and audio.ndim == 1
    return audio, path.name


@pytest.fixture()
def silence_then_bark(tmp_path: Path, bark_clip: tuple[np.ndarray, str]) -> tuple[Path, np.ndarray, int]:
    """A WAV of 1.5 s digital silence then the bark clip peak-normalised to -3 dBFS.

    Returns:
        The file, its samples, and the sample where the silence ends.
    """
    audio, _ = bark_clip
    silence_samples = 66150
    signal = np.concatenate([np.zeros(silence_samples, np.float32), audio / np.abs(audio).max() * 0.7])
    path = tmp_path / "silence_then_bark.wav"
    sf.write(str(path), signal, 44100, subtype="FLOAT")
    return path, signal.astype(np.float32), silence_samples
