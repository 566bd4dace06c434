"""Reading audio files: formats, channels, rates, and clear errors for bad files."""

from __future__ import annotations

import os

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtag.audio_io import AudioFileError, load_audio
from rtag.sources import FileSource


def tone(rate_hz: int, seconds: float = 0.5, freq_hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_reads_every_wav_sample_format(tmp_path: Path, subtype: str) -> None:
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, tone(44100), 44100, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (22050,)
    assert np.abs(audio - tone(44100)).max() < 0.02


@pytest.mark.parametrize("rate_hz", [8000, 22050, 48000, 96000, 192000])
def test_resamples_to_the_model_rate(tmp_path: Path, rate_hz: int) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(rate_hz), rate_hz)
    audio = load_audio(path, sample_rate_hz=44100)
    assert abs(len(audio) - 22050) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * 44100 / len(audio) == pytest.approx(440.0, abs=3.0)


def test_averages_channels(tmp_path: Path) -> None:
    left = tone(44100)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "stereo.flac"
    sf.write(path, stereo, 44100, subtype="PCM_24")
    assert np.allclose(load_audio(path), left / 2, atol=1e-4)


def test_reads_a_real_recording(real_data: Path, real_manifest) -> None:
    row = real_manifest[0]
    audio = load_audio(real_data / row["path"])
    assert len(audio) / 44100 == pytest.approx(float(row["duration_s"]), abs=0.01)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=r"gone\.wav: file not found"):
        load_audio(tmp_path / "gone.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="is a directory"):
        load_audio(tmp_path)


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # no writer: opening it would block forever
    with pytest.raises(AudioFileError, match=r"pipe\.wav: is not a regular file"):
        load_audio(fifo)
    with pytest.raises(AudioFileError, match=r"pipe\.wav: is not a regular file"):
        FileSource(fifo)


def test_non_audio_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples")
    with pytest.raises(AudioFileError, match=r"notes\.wav: cannot decode audio"):
        load_audio(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, tone(44100), 44100)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(AudioFileError, match=r"cut\.wav"):
        load_audio(path)


def test_zero_length_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 44100)
    with pytest.raises(AudioFileError, match="holds no samples"):
        load_audio(path)


def test_non_finite_samples(tmp_path: Path) -> None:
    audio = tone(44100)
    audio[100:103] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "nan.wav"
    sf.write(path, audio, 44100, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="3 NaN or infinite samples"):
        load_audio(path)


def _valid_wav_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "valid.wav"
    sf.write(path, tone(22050, seconds=0.05), 22050, subtype="PCM_16")
    return path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_byte_level_mutations_never_escape_as_anything_but_a_named_error(tmp_path: Path, data: st.DataObject) -> None:
    original = bytearray(_valid_wav_bytes(tmp_path))
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]), label="kind")
        at = data.draw(st.integers(0, max(0, len(mutated) - 1)), label="at")
        if kind == "flip" and mutated:
            mutated[at] = data.draw(st.integers(0, 255), label="byte")
        elif kind == "truncate":
            del mutated[at:]
        elif kind == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=16), label="inserted")
        elif kind == "delete":
            del mutated[at : at + data.draw(st.integers(1, 16), label="span")]
    path = tmp_path / "mutated.wav"
    path.write_bytes(bytes(mutated))
    try:
        audio = load_audio(path)
    except AudioFileError as exc:
        assert "mutated.wav" in str(exc)
    else:
        assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) > 0
        assert np.all(np.isfinite(audio))


def test_a_single_frame_too_short_to_resample_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.5], dtype=np.float32), 96000)
    with pytest.raises(AudioFileError, match="too few to resample"):
        load_audio(path)


def test_an_absurd_declared_sample_rate_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "slow.wav"
    sf.write(path, tone(44100), 44100)
    data = bytearray(path.read_bytes())
    data[24:28] = (7).to_bytes(4, "little")  # the fmt chunk's sample rate field
    path.write_bytes(bytes(data))
    with pytest.raises(AudioFileError, match="sample rate 7 Hz is outside"):
        load_audio(path)
