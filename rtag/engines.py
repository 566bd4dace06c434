"""Inference engines: what turns a batch of windows into class probabilities.

The streaming worker only needs an :class:`Engine`: labels, the audio parameters it expects and
``predict(audio[B, N]) -> probs[B, C]``. :class:`TorchEngine` runs a :class:`~rtag.model.TaggerModel`
with PyTorch; other back ends (ONNX Runtime) implement the same protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from rtag.model import TaggerModel

__all__ = ["Engine", "TorchEngine", "as_engine"]


@runtime_checkable
class Engine(Protocol):
    """A tagging back end.

    Attributes:
        labels: class names, in output order.
        sample_rate_hz: rate the input audio must have.
        window_samples: input length the network takes.
        hop_samples: the window hop the model was made for (the runtime default).
    """

    labels: tuple[str, ...]
    sample_rate_hz: int
    window_samples: int
    hop_samples: int

    def predict(self, audio: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C] float32 for raw audio windows [B, N] float32."""
        ...


class TorchEngine:
    """Run a :class:`~rtag.model.TaggerModel` with PyTorch on its own device.

    Args:
        model: the loaded model; its labels, rate, window and hop become the engine's.
    """

    def __init__(self, model: TaggerModel) -> None:
        self.model = model
        self.labels = tuple(model.labels)
        self.sample_rate_hz = int(model.sample_rate_hz)
        self.window_samples = int(model.window_samples)
        self.hop_samples = int(model.hop_samples)

    @property
    def name(self) -> str:
        """Back end and device, e.g. ``"torch-cpu"``."""
        return f"torch-{self.model.device.type}"

    def predict(self, audio: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C] float32 for audio [B, N] float32."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 2:
            raise ValueError(f"expected audio shaped [batch, samples], got {audio.shape}")
        return np.asarray(self.model.predict(audio), dtype=np.float32)


def as_engine(model: object) -> Engine:
    """Return ``model`` if it already is an :class:`Engine`, else wrap a TaggerModel in :class:`TorchEngine`."""
    if hasattr(model, "network") and hasattr(model, "predict"):
        return TorchEngine(model)  # type: ignore[arg-type]
    if isinstance(model, Engine):
        return model
    raise TypeError(
        f"expected a TaggerModel or an Engine (labels, sample_rate_hz, window_samples, hop_samples, "
        f"predict), got {type(model).__name__}"
    )
