"""Reading audio files into the model's format: float32, mono, 44.1 kHz."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "AUDIO_SUFFIXES", "AudioBlocks", "AudioFileError", "MAX_FILE_RATE_HZ", "MIN_FILE_RATE_HZ", "audio_files_in",
    "load_audio", "open_sound_file", "rate_problem", "require_audio_file", "resample_clip", "to_mono",
]

MIN_FILE_RATE_HZ = 1000
MAX_FILE_RATE_HZ = 768000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
"""File name endings taken as audio when a folder is searched (:func:`audio_files_in`)."""


class AudioFileError(ValueError):
    """An audio file cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def audio_files_in(folder: Path) -> list[Path]:
    """The audio files under ``folder`` (by :data:`AUDIO_SUFFIXES`, recursively), sorted by path."""
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file())


def rate_problem(rate_hz: float) -> str | None:
    """``None`` for a sample rate rtag reads (1-768 kHz), else what is wrong with it, e.g.
    ``"900 Hz is outside 1000-768000 Hz"``."""
    if MIN_FILE_RATE_HZ <= rate_hz <= MAX_FILE_RATE_HZ:
        return None
    return f"{rate_hz} Hz is outside {MIN_FILE_RATE_HZ}-{MAX_FILE_RATE_HZ} Hz"


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


def open_sound_file(path: str | Path) -> tuple[Path, sf.SoundFile]:
    """``path`` (checked by :func:`require_audio_file`) and the libsndfile handle opened on it.

    Raises:
        AudioFileError: if the file is missing, not a regular file, or cannot be decoded.
    """
    checked = require_audio_file(path)
    try:
        return checked, sf.SoundFile(str(checked))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioFileError(checked, f"cannot decode audio ({exc})") from None


class AudioBlocks:
    """An audio file read block by block as float32 mono samples at ``sample_rate_hz``.

    Memory stays at one block whatever the file's length: libsndfile decodes ``block_frames``
    at a time, channels are averaged, and other rates go through soxr's streaming resampler
    (high quality), whose output equals a one-shot resample of the whole file. The file is
    opened and checked when the object is made; iterating yields the blocks once.

    Args:
        path: the audio file (any format libsndfile reads).
        sample_rate_hz: the rate of the yielded samples (default 44100, the models' rate).
        block_frames: file frames decoded per block (default 65536).

    Attributes:
        file_rate_hz: the file's own rate.
        frames: the file's length in its own frames.

    Raises:
        AudioFileError: (when made) if the file is missing, not a regular file, not audio,
            holds no samples, or declares a rate outside 1-768 kHz; (while iterating) if a
            block holds NaN or infinite samples or cannot be decoded. Messages name the file.
    """

    def __init__(self, path: str | Path, sample_rate_hz: int = 44100, block_frames: int = 65536) -> None:
        if block_frames < 1:
            raise ValueError(f"block_frames must be at least 1, not {block_frames}")
        self.path, self._file = open_sound_file(path)
        self.sample_rate_hz = sample_rate_hz
        self.block_frames = block_frames
        self.file_rate_hz = int(self._file.samplerate)
        self.frames = int(self._file.frames)
        if self.frames <= 0:
            self._file.close()
            raise AudioFileError(self.path, "holds no samples")
        problem = rate_problem(self.file_rate_hz)
        if problem is not None:
            self._file.close()
            raise AudioFileError(self.path, f"sample rate {problem}")

    @property
    def duration_s(self) -> float:
        """The file's duration in seconds."""
        return self.frames / self.file_rate_hz

    def __iter__(self) -> Iterator[np.ndarray]:
        resampler = (
            None if self.file_rate_hz == self.sample_rate_hz
            else soxr.ResampleStream(self.file_rate_hz, self.sample_rate_hz, 1, dtype="float32", quality="HQ")
        )
        position = 0
        try:
            while True:
                try:
                    block = self._file.read(self.block_frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
                    raise AudioFileError(self.path, f"cannot decode audio at frame {position} ({exc})") from None
                last = block.shape[0] < self.block_frames
                if not np.all(np.isfinite(block)):
                    bad = int(np.count_nonzero(~np.isfinite(block)))
                    where = "" if position == 0 else f" (from frame {position} on)"
                    raise AudioFileError(self.path, f"holds {bad} NaN or infinite samples{where}")
                position += block.shape[0]
                mono = to_mono(block)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if mono.shape[0]:
                    yield np.ascontiguousarray(mono, dtype=np.float32)
                if last:
                    return
        finally:
            self._file.close()

    def close(self) -> None:
        """Close the file (iterating to the end closes it too)."""
        self._file.close()

    def __enter__(self) -> AudioBlocks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def load_audio(path: str | Path, sample_rate_hz: int = 44100) -> np.ndarray:
    """Read an audio file as float32 mono samples at ``sample_rate_hz``.

    Any format libsndfile reads (WAV of 8/16/24/32-bit integer or float, FLAC, OGG, ...) is
    accepted; channels are averaged and other rates are resampled with soxr (high quality).
    The whole file is held in memory: :class:`AudioBlocks` reads a long one block by block.

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
    blocks = AudioBlocks(path, sample_rate_hz)
    audio = list(blocks)
    if not audio:
        raise AudioFileError(blocks.path, f"{blocks.frames} samples at {blocks.file_rate_hz} Hz are too few to resample")
    return audio[0] if len(audio) == 1 else np.concatenate(audio)


def resample_clip(audio: np.ndarray, from_rate_hz: int, to_rate_hz: int) -> np.ndarray:
    """A 1-D clip at ``from_rate_hz`` resampled to ``to_rate_hz`` (soxr, high quality), float32.

    Raises:
        ValueError: if ``from_rate_hz`` lies outside 1-768 kHz or ``audio`` is not 1-D (a
            multichannel array must be mixed down first: :func:`to_mono` takes [frames, channels]).
    """
    problem = rate_problem(from_rate_hz)
    if problem is not None:
        raise ValueError(f"sample_rate_hz {problem}")
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"a clip must be 1-D samples, not an array of shape {samples.shape}")
    if from_rate_hz == to_rate_hz:
        return samples
    return np.asarray(soxr.resample(samples, from_rate_hz, to_rate_hz, quality="HQ"), dtype=np.float32)
