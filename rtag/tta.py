"""The papers' test-time procedure: many inputs per clip, combined by geometric mean.

A clip longer than the model input is cut into crops every ``step_samples``; a shorter clip is
zero-padded so that it appears at offsets 0, ``step_samples``, 2 * ``step_samples``, ... inside
the input. The per-input probabilities are then combined by their geometric mean. The papers use a
step of 5120 samples (about 0.12 s); the efficient mode of the technical report uses 51200.

The papers weigh every input alike (``weighting="equal"``). rtag's default, ``"energy"``, weighs
each input by its energy (mean square of what the network hears before its peak normalisation:
the input after the model's rumble filter, when it has one), so the quiet
decay of a note or the near-silence around a short sound cannot outvote the part that holds the
sound: peak normalisation makes a window 20 dB down look as loud as the attack to the network,
and on the held-out real recordings of the bundled model those quiet windows are mostly wrong
(``docs/model-card.md``). A clip whose inputs all have the same energy (every zero-padded
position of a short clip) gets the papers' result either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from rtag.scheduler import WindowScheduler

__all__ = [
    "WEIGHTINGS", "GeometricMean", "check_weighting", "geometric_mean", "input_weights", "tag_blocks", "tag_clip",
    "tta_batches", "tta_inputs", "tta_offsets", "tta_stream",
]

WEIGHTINGS = ("energy", "equal")
"""How the test-time inputs of a clip weigh in its geometric mean (see the module docstring)."""

_ENERGY_FLOOR = 1e-12
"""Added to every input's mean square (-120 dBFS), so a clip of digital silence weighs its inputs alike."""


def tta_offsets(length: int, window_samples: int, step_samples: int) -> np.ndarray:
    """Offsets of the test-time inputs for a clip of ``length`` samples.

    For a long clip (``length >= window_samples``) the offsets are crop starts in the clip; for a
    short one they are the positions of the clip inside the zero-padded input. Offsets run every
    ``step_samples``, and a last one flush with the end is added when the step does not land
    there, so no part of the clip is left out.
    """
    if window_samples <= 0 or step_samples <= 0:
        raise ValueError("window_samples and step_samples must be positive")
    if length <= 0:
        raise ValueError("the clip holds no samples")
    span = abs(length - window_samples)
    offsets = np.arange(0, span + 1, step_samples, dtype=np.int64)
    if offsets[-1] != span:
        offsets = np.append(offsets, span)
    return offsets


def tta_inputs(clip: np.ndarray, window_samples: int, step_samples: int) -> np.ndarray:
    """All test-time inputs for one clip, shaped [K, window_samples] float32.

    This holds K * window_samples floats at once (a 10-minute clip at step 5120 is about 5000
    inputs, 1.7 GB for the 2 s model): use :func:`tta_batches` to go through a long clip.

    Args:
        clip: 1-D mono samples.
        window_samples: model input length.
        step_samples: step between crops or padded positions (5120 in the papers, 51200 in
            the efficient mode).
    """
    clip = _as_clip(clip)
    offsets = tta_offsets(clip.shape[0], window_samples, step_samples)
    return _inputs_at(clip, offsets, window_samples)


def tta_batches(clip: np.ndarray, window_samples: int, step_samples: int, batch_size: int) -> Iterator[np.ndarray]:
    """The inputs of :func:`tta_inputs`, in the same order, made lazily ``batch_size`` at a time.

    Memory stays at one batch ([batch_size, window_samples] float32) whatever the clip length.

    Args:
        clip: 1-D mono samples.
        window_samples: model input length.
        step_samples: step between crops or padded positions.
        batch_size: inputs per yielded array (the last one may hold fewer); must be positive.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    clip = _as_clip(clip)
    offsets = tta_offsets(clip.shape[0], window_samples, step_samples)
    for first in range(0, offsets.shape[0], batch_size):
        yield _inputs_at(clip, offsets[first : first + batch_size], window_samples)


def _as_clip(clip: np.ndarray) -> np.ndarray:
    clip = np.asarray(clip, dtype=np.float32)
    if clip.ndim != 1:
        raise ValueError(f"expected a 1-D clip, got shape {clip.shape}")
    return clip


def _inputs_at(clip: np.ndarray, offsets: np.ndarray, window_samples: int) -> np.ndarray:
    """Inputs [len(offsets), window_samples]: crops starting at ``offsets`` of a long clip, or
    zero-padded copies of a short clip placed at ``offsets``."""
    if clip.shape[0] >= window_samples:
        index = offsets[:, None] + np.arange(window_samples)[None, :]
        return clip[index]
    inputs = np.zeros((offsets.shape[0], window_samples), dtype=np.float32)
    for row, offset in enumerate(offsets):
        inputs[row, offset : offset + clip.shape[0]] = clip
    return inputs


GEOMETRIC_MEAN_EPS = 1e-7
"""Probabilities are clipped here before their logarithm, so that one zero does not veto a class."""


def _logs(probs: np.ndarray, eps: float) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), eps, 1.0))


def _normalised_exp(mean_logs: np.ndarray) -> np.ndarray:
    combined = np.exp(mean_logs)
    combined /= combined.sum(axis=-1, keepdims=True)
    return combined.astype(np.float32)


def geometric_mean(probs: np.ndarray, axis: int = 0, eps: float = GEOMETRIC_MEAN_EPS) -> np.ndarray:
    """Geometric mean of probability vectors along ``axis``, renormalised to sum to one.

    Computed in log space; probabilities are clipped at ``eps`` so that one zero does not veto a
    class.
    """
    return _normalised_exp(_logs(probs, eps).mean(axis=axis))


def check_weighting(weighting: str) -> str:
    """``weighting`` itself if it is one of :data:`WEIGHTINGS`.

    Raises:
        ValueError: naming the choices, for any other value.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
    return weighting


def input_weights(inputs: np.ndarray, weighting: str, rumble_filter: torch.nn.Module | None = None) -> np.ndarray:
    """Weights [K] of test-time inputs [K, window_samples] in their clip's geometric mean:
    ``"energy"``, each input's mean square (plus 1e-12); ``"equal"``, ones.

    ``rumble_filter`` (a model's :class:`rtag.networks.RumbleFilter`, or ``None``) is applied
    before the mean square, so the energy is that of what the network hears: rumble far below
    every class would otherwise weigh a note's quiet decay like its attack.

    Raises:
        ValueError: for a weighting outside :data:`WEIGHTINGS`.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    if check_weighting(weighting) == "equal":
        return np.ones(inputs.shape[0])
    if rumble_filter is not None:
        with torch.no_grad():
            inputs = rumble_filter(torch.from_numpy(np.ascontiguousarray(inputs))).numpy()
    return np.mean(np.square(inputs, dtype=np.float64), axis=-1) + _ENERGY_FLOOR


class GeometricMean:
    """:func:`geometric_mean` over axis 0 of probability rows that arrive batch by batch,
    optionally weighted (a weighted mean of the logarithms)."""

    def __init__(self, eps: float = GEOMETRIC_MEAN_EPS) -> None:
        self.eps = eps
        self._log_sum: np.ndarray | None = None
        self.count = 0
        self._weight_sum = 0.0

    def add(self, probs: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Take rows [B, C] of probabilities, with positive ``weights`` [B] (default: ones)."""
        logs = _logs(probs, self.eps)
        weights = np.ones(logs.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
        if weights.shape != (logs.shape[0],) or not np.all(weights > 0):
            raise ValueError(f"weights must be {logs.shape[0]} positive numbers, got shape {weights.shape}")
        weighted = weights @ logs
        self._log_sum = weighted if self._log_sum is None else self._log_sum + weighted
        self.count += logs.shape[0]
        self._weight_sum += float(weights.sum())

    def result(self) -> np.ndarray:
        """The (weighted) geometric mean [C] of every row added.

        Raises:
            ValueError: if no row was added.
        """
        if self._log_sum is None or self.count == 0:
            raise ValueError("no probabilities were added")
        return _normalised_exp(self._log_sum / self._weight_sum)


def tag_clip(
    predict: Callable[[np.ndarray], np.ndarray],
    clip: np.ndarray,
    window_samples: int,
    step_samples: int,
    batch_size: int = 32,
    weighting: str = "energy",
    rumble_filter: torch.nn.Module | None = None,
) -> np.ndarray:
    """Probabilities [C] of a whole clip: every test-time input through ``predict``, geometric mean.

    Args:
        predict: windows [B, window_samples] -> probabilities [B, C] (an engine's ``predict``).
        clip: 1-D samples at the model's rate.
        window_samples: model input length.
        step_samples: step between crops or padded positions.
        batch_size: inputs per ``predict`` call (default 32).
        weighting: ``"energy"`` (default) or ``"equal"`` (the papers'); see the module docstring.
        rumble_filter: the model's rumble filter for the energy weights (see :func:`input_weights`).
    """
    return tag_blocks(predict, [_as_clip(clip)], window_samples, step_samples, batch_size, weighting, rumble_filter)


def tag_blocks(
    predict: Callable[[np.ndarray], np.ndarray],
    blocks: Iterable[np.ndarray],
    window_samples: int,
    step_samples: int,
    batch_size: int = 32,
    weighting: str = "energy",
    rumble_filter: torch.nn.Module | None = None,
) -> np.ndarray:
    """:func:`tag_clip` of the clip that ``blocks`` make up, read once, in bounded memory.

    The inputs are those of :func:`tta_stream`, each through ``predict`` once, ``batch_size``
    at a time, and their probabilities are combined by the same geometric mean, so a 10-hour
    recording costs a window and a batch of memory, not the recording.

    Args:
        predict: windows [B, window_samples] -> probabilities [B, C].
        blocks: 1-D samples at the model's rate, in order (any sizes).
        window_samples: model input length.
        step_samples: step between crops or padded positions.
        batch_size: inputs per ``predict`` call (default 32).
        weighting: ``"energy"`` (default) or ``"equal"``; see :func:`tag_clip`.
        rumble_filter: the model's rumble filter for the energy weights (see :func:`input_weights`).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    check_weighting(weighting)
    mean = GeometricMean()

    def add(inputs: list[np.ndarray]) -> None:
        batch = np.stack(inputs)
        mean.add(predict(batch), input_weights(batch, weighting, rumble_filter))

    pending: list[np.ndarray] = []
    for crop in tta_stream(blocks, window_samples, step_samples):
        pending.append(crop)
        if len(pending) == batch_size:
            add(pending)
            pending = []
    if pending:
        add(pending)
    return mean.result()


def tta_stream(blocks: Iterable[np.ndarray], window_samples: int, step_samples: int) -> Iterator[np.ndarray]:
    """The test-time inputs [window_samples] of the clip that ``blocks`` make up, one at a time,
    as soon as the blocks read so far hold them.

    They are those of :func:`tta_offsets`, in order: crops every ``step_samples`` and one flush
    with the end; a clip shorter than a window zero-padded at every position.

    Args:
        blocks: 1-D samples at the model's rate, in order (any sizes).
        window_samples: model input length.
        step_samples: step between crops or padded positions.

    Raises:
        ValueError: if the blocks hold no samples.
    """
    if window_samples <= 0 or step_samples <= 0:
        raise ValueError("window_samples and step_samples must be positive")
    scheduler = WindowScheduler(window_samples, step_samples)
    head: list[np.ndarray] = []  # the samples until one window is full (a short clip is all head)
    recent = np.zeros(0, dtype=np.float32)  # the newest window_samples samples
    total = 0
    for block in blocks:
        block = _as_clip(block)
        total += block.shape[0]
        if scheduler.windows_emitted == 0 and total < window_samples:
            head.append(block)
            continue
        if head:
            block, head = np.concatenate([*head, block]), []
        recent = np.concatenate([recent, block[-window_samples:]])[-window_samples:]
        for window in scheduler.push(block, 0.0):
            yield window.audio
    if total == 0:
        raise ValueError("the clip holds no samples")
    if head:  # shorter than a window: padded at every position
        clip = np.concatenate(head)
        for batch in tta_batches(clip, window_samples, step_samples, 32):
            yield from batch
        return
    if (total - window_samples) % step_samples:
        yield recent  # the crop flush with the end
