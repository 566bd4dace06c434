"""Inference engines: what turns a batch of windows into class probabilities.

The streaming worker only needs an :class:`Engine`: labels, the audio parameters it expects and
``predict(audio[B, N]) -> probs[B, C]``. :class:`TorchEngine` runs a :class:`~rtag.model.TaggerModel`
with PyTorch (CUDA or CPU) in fp32 or bf16; :class:`OnnxEngine` runs an exported graph with ONNX
Runtime (CUDA execution provider when it can load, CPU otherwise) in fp32 or, from the int8 graph
kept beside the bundle (:mod:`rtag.quantize`), in int8. :func:`create_engine` picks one by name
and precision (:data:`PRECISIONS`).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch

if TYPE_CHECKING:
    from rtag.model import TaggerModel

__all__ = [
    "ENGINE_KINDS",
    "PRECISIONS",
    "Engine",
    "OnnxEngine",
    "TorchEngine",
    "as_engine",
    "check_engine",
    "create_engine",
    "parse_engines",
]

log = logging.getLogger(__name__)

ENGINE_KINDS = ("torch", "onnx")
PRECISIONS: dict[str, tuple[str, ...]] = {"torch": ("fp32", "bf16"), "onnx": ("fp32", "int8")}
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
        precision: ``"fp32"`` (default) or ``"bf16"`` (autocast: convolutions and matrix
            products in bfloat16, about 2.4x faster than fp32 on CPUs with AVX-512 BF16).
    """

    def __init__(self, model: TaggerModel, precision: str = "fp32") -> None:
        check_engine("torch", precision)
        self.model = model
        self.precision = precision
        self.labels = tuple(model.labels)
        self.sample_rate_hz = int(model.sample_rate_hz)
        self.window_samples = int(model.window_samples)
        self.hop_samples = int(model.hop_samples)

    @property
    def name(self) -> str:
        """Back end, device and precision, e.g. ``"torch-cpu-fp32"``."""
        return f"torch-{self.model.device.type}-{self.precision}"

    def predict(self, audio: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C] float32 for audio [B, N] float32."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 2:
            raise ValueError(f"expected audio shaped [batch, samples], got {audio.shape}")
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return np.asarray(self.model.predict(audio), dtype=np.float32)


class OnnxEngine:
    """Run an ONNX graph exported by :func:`rtag.onnx_export.export_onnx` with ONNX Runtime.

    A graph of the host-front-end form (inputs ``audio`` and/or ``spectrogram``) gets its inputs
    from a :class:`~rtag.networks.FrontEnd` built from the graph's ``rtag_config`` and run with
    torch on the CPU; a graph-form file takes raw audio directly.

    Execution providers are asked for in the order given; ``onnxruntime-gpu`` lists CUDA as
    available even where it cannot load CUDA, so :attr:`providers` reports what the session
    actually runs (``session.get_providers()``), and a warning is logged when CUDA was asked for
    and is not running. TensorRT is never asked for unless named.

    Args:
        onnx_path: the exported graph (labels and audio parameters are read from its metadata).
        providers: execution providers in order of preference (default CUDA, then CPU).
        intra_op_threads: CPU threads per operator (default ``None``: ONNX Runtime's choice).
        weights_sha256: when given, the graph must have been made from a bundle with these
            weights (its ``rtag_weights_sha256``), else ValueError.
    """

    def __init__(
        self,
        onnx_path: str | Path,
        providers: Sequence[str] = DEFAULT_ONNX_PROVIDERS,
        intra_op_threads: int | None = None,
        weights_sha256: str | None = None,
    ) -> None:
        import onnxruntime as ort

        from rtag.config import ModelConfig, from_dict
        from rtag.networks import FrontEnd
        from rtag.onnx_export import read_onnx_metadata

        facts = read_onnx_metadata(onnx_path)
        self.path = Path(onnx_path)
        if weights_sha256 is not None and facts.get("weights_sha256") != weights_sha256:
            raise ValueError(
                f"{self.path}: made from other weights than this model (rtag_weights_sha256 "
                f"{facts.get('weights_sha256') or 'missing'}, the model has {weights_sha256}); export it again"
            )
        self.labels = tuple(json.loads(facts["labels"]))
        self.sample_rate_hz = int(facts["sample_rate_hz"])
        self.window_samples = int(facts["window_samples"])
        self.hop_samples = int(facts["hop_samples"])
        self.precision = facts.get("precision", "fp32")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # ONNX Runtime's threads otherwise spin after each run, stealing the cores from the torch
        # front end and the capture thread that run between calls (measured: 2x slower per window)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        available = set(ort.get_available_providers())
        requested = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        # a provider library that cannot load logs an error of its own; it is reported below, once
        ort.set_default_logger_severity(4)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=requested)
        finally:
            ort.set_default_logger_severity(2)
        self.providers: tuple[str, ...] = tuple(self.session.get_providers())
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.front_end: FrontEnd | None = None
        if self.input_names != ("audio",) or facts.get("front_end") == "host":
            config = from_dict(ModelConfig, json.loads(facts["config"]), source=f"{self.path} rtag_config")
            # int8 layers err far more than a single-precision FFT does (5e-3 dB), which is faster
            fft_precision = "single" if self.precision == "int8" else "double"
            self.front_end = FrontEnd(config, self.input_names, fft_precision).eval()
        if "CUDAExecutionProvider" in providers and "CUDAExecutionProvider" not in self.providers:
            # loud only where a GPU exists (torch sees it) and ONNX Runtime still cannot use it
            level = logging.WARNING if _gpu_present() else logging.INFO
            log.log(level, "ONNX Runtime cannot use CUDA here; running on %s", ", ".join(self.providers))

    @property
    def name(self) -> str:
        """Back end, the provider that runs and the precision, e.g. ``"onnxruntime-CPUExecutionProvider-int8"``."""
        return f"onnxruntime-{self.providers[0]}-{self.precision}"

    def predict(self, audio: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C] float32 for audio [B, N] float32."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[1] != self.window_samples:
            raise ValueError(f"expected audio shaped [batch, {self.window_samples}], got {audio.shape}")
        feeds = {"audio": audio}
        if self.front_end is not None:
            with torch.inference_mode():
                inputs = self.front_end(torch.from_numpy(audio))
            feeds = {name: tensor.numpy() for name, tensor in zip(self.input_names, inputs)}
        return self.session.run(["probabilities"], feeds)[0]


def _gpu_present() -> bool:
    return torch.cuda.is_available()


def check_engine(kind: str, precision: str = "fp32") -> None:
    """Raise ValueError unless ``kind`` is an engine and ``precision`` one of its precisions."""
    if kind not in ENGINE_KINDS:
        raise ValueError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINE_KINDS)}")
    if precision not in PRECISIONS[kind]:
        raise ValueError(
            f"engine {kind!r} has no precision {precision!r}; choose one of {', '.join(PRECISIONS[kind])}"
        )


def parse_engines(text: str) -> list[tuple[str, str]]:
    """``"torch:bf16,onnx"`` -> ``[("torch", "bf16"), ("onnx", "fp32")]``, each pair checked.

    Raises:
        ValueError: for an unknown engine or precision, or a text that names no engine.
    """
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            kind, _, precision = item.partition(":")
            check_engine(kind, precision or "fp32")
            pairs.append((kind, precision or "fp32"))
    if not pairs:
        raise ValueError(f"{text!r} names no engine")
    return pairs


def create_engine(
    model: TaggerModel, kind: str = "torch", precision: str = "fp32", onnx_dir: str | Path | None = None
) -> Engine:
    """An engine of ``kind`` and ``precision`` for ``model``.

    Args:
        model: the loaded model.
        kind: ``"torch"`` (default; the model's own device) or ``"onnx"`` (ONNX Runtime on CUDA
            when it can, else on the CPU).
        precision: ``"fp32"`` (default); ``"bf16"`` for torch; ``"int8"`` for onnx, which runs
            the int8 graph kept beside the model's bundle (``NAME.int8.onnx``, made by
            ``rtag export BUNDLE --precision int8``).
        onnx_dir: where the fp32 ONNX export is written for ``"onnx"`` (default: a temporary
            folder kept for the life of the process).

    Raises:
        ValueError: for an unknown kind or precision, or an int8 request for a model that has
            no int8 graph (the message says how to make one).
    """
    check_engine(kind, precision)
    if kind == "torch":
        return TorchEngine(model, precision)
    if precision == "int8":
        from rtag.quantize import int8_graph_for, int8_graph_path

        graph = int8_graph_for(model)
        if graph is None:
            where = "this in-memory model" if model.source_path is None else str(int8_graph_path(model.source_path))
            raise ValueError(
                f"no int8 graph for {where}; make one with: rtag export BUNDLE --precision int8 "
                "--calibration AUDIO_DIR -o NAME.int8.onnx (beside NAME.rtag)"
            )
        return OnnxEngine(graph, weights_sha256=model.weights_sha256)
    from rtag.onnx_export import export_onnx

    folder = Path(onnx_dir) if onnx_dir is not None else Path(tempfile.mkdtemp(prefix="rtag-onnx-"))
    return OnnxEngine(export_onnx(model, folder / "model.onnx", front_end="host"))


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
