"""Inference engines: what turns a batch of windows into class probabilities.

The streaming worker only needs an :class:`Engine`: labels, the audio parameters it expects and
``predict(audio[B, N]) -> probs[B, C]``. :class:`TorchEngine` runs a :class:`~rtag.model.TaggerModel`
with PyTorch (CUDA or CPU); :class:`OnnxEngine` runs an exported graph with ONNX Runtime (CUDA
execution provider when it can load, CPU otherwise). :func:`create_engine` picks one by name.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from rtag.model import TaggerModel

__all__ = ["ENGINE_KINDS", "Engine", "OnnxEngine", "TorchEngine", "as_engine", "create_engine"]

log = logging.getLogger(__name__)

ENGINE_KINDS = ("torch", "onnx")
DEFAULT_ONNX_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


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


class OnnxEngine:
    """Run an ONNX graph exported by :func:`rtag.onnx_export.export_onnx` with ONNX Runtime.

    Execution providers are asked for in the order given; ``onnxruntime-gpu`` lists CUDA as
    available even where it cannot load CUDA, so :attr:`providers` reports what the session
    actually runs (``session.get_providers()``), and a warning is logged when CUDA was asked for
    and is not running. TensorRT is never asked for unless named.

    Args:
        onnx_path: the exported graph (labels and audio parameters are read from its metadata).
        providers: execution providers in order of preference (default CUDA, then CPU).
        intra_op_threads: CPU threads per operator (default ``None``: ONNX Runtime's choice).
    """

    def __init__(
        self,
        onnx_path: str | Path,
        providers: Sequence[str] = DEFAULT_ONNX_PROVIDERS,
        intra_op_threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        from rtag.onnx_export import read_onnx_metadata

        facts = read_onnx_metadata(onnx_path)
        self.path = Path(onnx_path)
        self.labels = tuple(json.loads(facts["labels"]))
        self.sample_rate_hz = int(facts["sample_rate_hz"])
        self.window_samples = int(facts["window_samples"])
        self.hop_samples = int(facts["hop_samples"])
        options = ort.SessionOptions()
        options.log_severity_level = 3  # a provider that cannot load is reported below, once
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        available = set(ort.get_available_providers())
        requested = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(self.path), options, providers=requested)
        self.providers: tuple[str, ...] = tuple(self.session.get_providers())
        if "CUDAExecutionProvider" in providers and "CUDAExecutionProvider" not in self.providers:
            # loud only where a GPU exists (torch sees it) and ONNX Runtime still cannot use it
            level = logging.WARNING if _gpu_present() else logging.INFO
            log.log(level, "ONNX Runtime cannot use CUDA here; running on %s", ", ".join(self.providers))

    @property
    def name(self) -> str:
        """Back end and the provider that runs, e.g. ``"onnxruntime-CPUExecutionProvider"``."""
        return f"onnxruntime-{self.providers[0]}"

    def predict(self, audio: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C] float32 for audio [B, N] float32."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[1] != self.window_samples:
            raise ValueError(f"expected audio shaped [batch, {self.window_samples}], got {audio.shape}")
        return self.session.run(["probabilities"], {"audio": audio})[0]


def _gpu_present() -> bool:
    import torch

    return torch.cuda.is_available()


def create_engine(model: TaggerModel, kind: str = "torch", onnx_dir: str | Path | None = None) -> Engine:
    """An engine of ``kind`` for ``model``.

    Args:
        model: the loaded model.
        kind: ``"torch"`` (default; the model's own device) or ``"onnx"`` (the model is exported
            to ONNX, then run by ONNX Runtime on CUDA when it can, else on the CPU).
        onnx_dir: where the ONNX export is written for ``"onnx"`` (default: a temporary folder
            kept for the life of the process).
    """
    if kind == "torch":
        return TorchEngine(model)
    if kind == "onnx":
        from rtag.onnx_export import export_onnx

        folder = Path(onnx_dir) if onnx_dir is not None else Path(tempfile.mkdtemp(prefix="rtag-onnx-"))
        return OnnxEngine(export_onnx(model, folder / "model.onnx"))
    raise ValueError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINE_KINDS)}")


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
