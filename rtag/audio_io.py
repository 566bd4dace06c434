"""Reading audio files into the model's format: float32, mono, 44.1 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "AudioFileError", "MAX_FILE_RATE_HZ", "MIN_FILE_RATE_HZ", "load_audio", "require_audio_file", "resample_clip", "to_mono",
]

MIN_FILE_RATE_HZ = 1000
MAX_FILE_RATE_HZ = 768000


class AudioFileError(ValueError):
    """An audio file cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of ``audio`` shaped [frames, channels]; a 1-D array is returned as is."""
    if audio.ndim == 1:
        return audio
    return audio.mean(axis=1, dtype=np.float32)


def require_audio_file(path: str | Path) -> Path:
    """``path`` as a :class:`~pathlib.Path` once it is known to be a regular file.

    A FIFO, a device or a socket would block the reader forever (or read without end), so they
    are refused before anything opens them.

    Raises:
        AudioFileError: if ``path`` is missing, a directory, or not a regular file.
    """
    path = Path(path)
    if not path.exists():
        raise AudioFileError(path, "file not found")
    if path.is_dir():
        raise AudioFileError(path, "is a directory, not an audio file")
    if not path.is_file():
        raise AudioFileError(path, "is not a regular file (a FIFO, device or socket); save the audio to a file first")
    return path


def load_audio(path: str | Path, sample_rate_hz: int = 44100) -> np.ndarray:
    """Read an audio file as float32 mono samples at ``sample_rate_hz``.

    Any format libsndfile reads (WAV of 8/16/24/32-bit integer or float, FLAC, OGG, ...) is
    accepted; channels are averaged and other rates are resampled with soxr (high quality).

    Args:
        path: the audio file.
        sample_rate_hz: the rate to return (default 44100, the models' rate).

    Returns:
        A 1-D float32 array of samples, nominally in [-1, 1].

    Raises:
        AudioFileError: if the file is missing, unreadable, not audio, holds no samples, holds
            NaN or infinite samples, or declares a sample rate outside 1-768 kHz; the message
            names the file and the reason.
    """
    path = require_audio_file(path)
    try:
        audio, file_rate_hz = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioFileError(path, f"cannot decode audio ({exc})") from None
    if audio.shape[0] == 0:
        raise AudioFileError(path, "holds no samples")
    if not MIN_FILE_RATE_HZ <= file_rate_hz <= MAX_FILE_RATE_HZ:
        raise AudioFileError(
            path, f"sample rate {file_rate_hz} Hz is outside {MIN_FILE_RATE_HZ}-{MAX_FILE_RATE_HZ} Hz"
        )
    if not np.all(np.isfinite(audio)):
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise AudioFileError(path, f"holds {bad} NaN or infinite samples")
    mono = to_mono(audio)
    if file_rate_hz != sample_rate_hz:
        mono = resample_clip(mono, file_rate_hz, sample_rate_hz)
        if mono.shape[0] == 0:
            raise AudioFileError(path, f"{audio.shape[0]} samples at {file_rate_hz} Hz are too few to resample")
    return np.ascontiguousarray(mono, dtype=np.float32)


def resample_clip(audio: np.ndarray, from_rate_hz: int, to_rate_hz: int) -> np.ndarray:
    """A 1-D clip at ``from_rate_hz`` resampled to ``to_rate_hz`` (soxr, high quality), float32.

    Raises:
        ValueError: if ``from_rate_hz`` lies outside 1-768 kHz or ``audio`` is not 1-D (a
            multichannel array must be mixed down first: :func:`to_mono` takes [frames, channels]).
    """
    if not MIN_FILE_RATE_HZ <= from_rate_hz <= MAX_FILE_RATE_HZ:
        raise ValueError(f"sample_rate_hz {from_rate_hz} is outside {MIN_FILE_RATE_HZ}-{MAX_FILE_RATE_HZ} Hz")
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"a clip must be 1-D samples, not an array of shape {samples.shape}")
    if from_rate_hz == to_rate_hz:
        return samples
    return np.asarray(soxr.resample(samples, from_rate_hz, to_rate_hz, quality="HQ"), dtype=np.float32)
