"""Input levels in dBFS, and the silence gate that keeps silent windows away from the engine.

A window's level is the RMS of its loudest short frame (:data:`LEVEL_FRAME_SAMPLES`, 46 ms at
44.1 kHz), not the RMS of the whole window: a short quiet sound (a finger snap near -24 dBFS
peak) in an otherwise silent 2 s window keeps the window's level up, while digital silence and
steady faint noise stay at their (low) level. A window below ``silence_threshold_dbfs`` is
*silent*: the model is not asked about it, no tag starts on it and active tags end
(docs/streaming.md, "Silence").
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEVEL_FLOOR_DBFS", "LEVEL_FRAME_SAMPLES", "LevelMeter", "is_silent", "window_level_dbfs"]

LEVEL_FLOOR_DBFS = -120.0
LEVEL_FRAME_SAMPLES = 2048


def _dbfs(mean_square: float, floor_dbfs: float) -> float:
    return max(floor_dbfs, 10.0 * float(np.log10(max(mean_square, 1e-24))))


def window_level_dbfs(
    audio: np.ndarray, frame_samples: int = LEVEL_FRAME_SAMPLES, floor_dbfs: float = LEVEL_FLOOR_DBFS
) -> float:
    """Level of a window: the RMS level of its loudest frame, in dBFS, at least ``floor_dbfs``.

    Args:
        audio: 1-D samples (a whole window).
        frame_samples: length of the consecutive frames the window is cut into (default 2048);
            a last, shorter frame counts like the others.
        floor_dbfs: the level of digital silence (default -120).
    """
    if frame_samples < 1:
        raise ValueError(f"frame_samples must be at least 1, not {frame_samples}")
    if audio.size == 0:
        return floor_dbfs
    starts = np.arange(0, audio.shape[0], frame_samples)
    sums = np.add.reduceat(np.square(audio, dtype=np.float64), starts)
    counts = np.diff(np.append(starts, audio.shape[0]))
    return _dbfs(float(np.max(sums / counts)), floor_dbfs)


class LevelMeter:
    """The level of :func:`window_level_dbfs` for audio that arrives in blocks of any size: the
    frames are cut from the stream's first sample on, exactly as from one array.

    Args:
        frame_samples: frame length (default 2048).
        floor_dbfs: the level of digital silence (default -120).
    """

    def __init__(self, frame_samples: int = LEVEL_FRAME_SAMPLES, floor_dbfs: float = LEVEL_FLOOR_DBFS) -> None:
        if frame_samples < 1:
            raise ValueError(f"frame_samples must be at least 1, not {frame_samples}")
        self.frame_samples = frame_samples
        self.floor_dbfs = floor_dbfs
        self._partial = np.zeros(0, dtype=np.float32)
        self._loudest = 0.0

    def add(self, block: np.ndarray) -> None:
        """Take the next samples of the stream."""
        audio = np.concatenate([self._partial, np.asarray(block, dtype=np.float32)])
        whole = audio.shape[0] - audio.shape[0] % self.frame_samples
        if whole:
            frames = np.square(audio[:whole], dtype=np.float64).reshape(-1, self.frame_samples)
            self._loudest = max(self._loudest, float(frames.mean(axis=1).max()))
        self._partial = audio[whole:]

    @property
    def level_dbfs(self) -> float:
        """The level of everything added so far (a last, shorter frame counts like the others)."""
        loudest = self._loudest
        if self._partial.size:
            loudest = max(loudest, float(np.square(self._partial, dtype=np.float64).mean()))
        return _dbfs(loudest, self.floor_dbfs)


def is_silent(window_level: float, silence_threshold_dbfs: float | None) -> bool:
    """Whether a window of level ``window_level`` (dBFS) is silence under ``silence_threshold_dbfs``.

    ``None`` disables the gate: nothing is silent.
    """
    return silence_threshold_dbfs is not None and window_level < silence_threshold_dbfs
