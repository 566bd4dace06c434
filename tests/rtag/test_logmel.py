"""The in-network log-mel agrees with librosa on real recordings, and is resized explicitly."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from rtag.audio_io import load_audio
from rtag.config import MelConfig
from rtag.logmel import LogMel, num_frames, resize_frames


def librosa_log_mel(audio: np.ndarray, mel: MelConfig) -> np.ndarray:
    """The papers' spectrogram, computed by librosa in double precision (the reference)."""
    power = librosa.feature.melspectrogram(
        y=audio.astype(np.float64),
        sr=44100,
        n_fft=mel.n_fft,
        hop_length=mel.hop_samples,
        n_mels=mel.n_mels,
        center=True,
        pad_mode="constant",
        power=2.0,
    )
    return librosa.power_to_db(power, ref=1.0, amin=mel.amin, top_db=mel.top_db)


def parity_clips(real_manifest: list[dict[str, str]]) -> list[str]:
    """One clip of each source kind: field recordings, instruments, drums, body percussion."""
    chosen: dict[str, str] = {}
    for row in real_manifest:
        chosen.setdefault(row["source"], row["path"])
    return sorted(chosen.values())


@pytest.mark.parametrize(("precision", "tolerance_db"), [("double", 1e-3), ("single", 5e-3)])
def test_log_mel_matches_librosa_on_real_recordings(
    real_data: Path, real_manifest: list[dict[str, str]], precision: str, tolerance_db: float
) -> None:
    mel = MelConfig()
    module = LogMel(mel, 44100, fft_precision=precision)
    clips = parity_clips(real_manifest)
    assert len(clips) >= 4
    for relative in clips:
        audio = load_audio(real_data / relative)
        expected = librosa_log_mel(audio, mel)
        with torch.no_grad():
            got = module(torch.from_numpy(audio)[None])[0].numpy()
        assert got.shape == expected.shape == (128, num_frames(len(audio), 256))
        assert np.abs(got - expected).max() <= tolerance_db, relative


def test_log_mel_batches_examples_independently(real_data: Path, real_manifest: list[dict[str, str]]) -> None:
    module = LogMel(MelConfig())
    first, second = (
        np.resize(load_audio(real_data / p), 44100) for p in parity_clips(real_manifest)[:2]
    )
    with torch.no_grad():
        both = module(torch.from_numpy(np.stack([first, second])))
        alone = module(torch.from_numpy(second)[None])
    assert torch.allclose(both[1], alone[0], atol=1e-4)


def test_top_db_floor_is_relative_to_each_examples_peak() -> None:
    module = LogMel(MelConfig(top_db=80.0))
    audio = torch.zeros(1, 22050)
    audio[0, 1000] = 1.0
    with torch.no_grad():
        db = module(audio)
    assert db.max() - db.min() == pytest.approx(80.0, abs=1e-3)


def test_two_second_window_is_resized_from_345_to_300_frames() -> None:
    assert num_frames(88200, 256) == 345
    spec = torch.arange(345, dtype=torch.float32).repeat(1, 128, 1)
    resized = resize_frames(spec, 300)
    assert resized.shape == (1, 128, 300)
    # linear interpolation with half-pixel centres keeps a ramp a ramp, end to end
    steps = resized[0, 0, 1:] - resized[0, 0, :-1]
    assert torch.allclose(steps, torch.full_like(steps, 345 / 300), atol=1e-4)
    assert resize_frames(resized, 300) is resized


def test_invalid_fft_precision_is_rejected() -> None:
    with pytest.raises(ValueError, match="fft_precision"):
        LogMel(MelConfig(), fft_precision="half")
