"""Inference engines: what turns a batch of windows into class probabilities.

The streaming worker only needs an :class:`Engine`: labels, the audio parameters it expects and
``predict(audio[B, N]) -> probs[B, C]``. :class:`TorchEngine` runs a :class:`~rtag.model.TaggerModel`
with PyTorch (CUDA or CPU) in fp32 or bf16; :class:`OnnxEngine` runs an exported graph with ONNX
Runtime (CUDA execution provider when it can load, CPU otherwise) in fp32 or, from the int8 graph
kept beside the bundle (:mod:`rtag.quantize`), in int8. :func:`create_engine` picks one by name
and precision (:data:`PRECISIONS`), or with ``"auto"`` (the default everywhere) the fastest one
that can run here: a CUDA engine when a GPU can really be used, else torch bf16 on a CPU with
AMX, else int8 when the bundle has a matching int8 graph, else ONNX Runtime fp32, else torch.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from rtag.networks import RumbleFilter, cpu_inference_form

if TYPE_CHECKING:
    from rtag.model import TaggerModel

__all__ = [
    "AUTO",
    "ENGINE_KINDS",
    "PRECISIONS",
    "Engine",
    "OnnxEngine",
    "TorchEngine",
    "as_engine",
    "check_engine",
    "cpu_has_amx",
    "create_engine",
    "describe_engine",
    "parse_engines",
    "rumble_filter_of",
    "warm_up_engine",
]

log = logging.getLogger(__name__)

AUTO = "auto"
ENGINE_KINDS = (AUTO, "torch", "onnx")
PRECISIONS: dict[str, tuple[str, ...]] = {"torch": ("fp32", "bf16"), "onnx": ("fp32", "int8")}
"""The precisions of each concrete engine; ``"auto"`` also takes ``"auto"`` for either."""
DEFAULT_ONNX_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
CPU_BATCH_WINDOWS = 4
"""Windows a CPU torch engine runs at once: on 2 cores bf16 costs 15-17 ms a window at batches
of 1-4 and 28-38 ms at 8-32 (docs/speed.md)."""


@runtime_checkable
class Engine(Protocol):
    """A tagging back end.

    Attributes:
        labels: class names, in output order.
        sample_rate_hz: rate the input audio must have.
        window_samples: input length the network takes.
        hop_samples: the window hop the model was made for (the runtime default).

    An engine may also have ``rumble_filter``, its network's :class:`~rtag.networks.RumbleFilter`
    (or ``None``), for the energy weights of whole-file tags (:func:`rumble_filter_of`).
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

    On the CPU the engine runs a copy of the network laid out for it
    (:func:`rtag.networks.cpu_inference_form`: the same results, 1.5x faster in fp32 and about
    3x under bfloat16 on AMX), made when the engine is made, and feeds it at most
    :data:`CPU_BATCH_WINDOWS` windows at a time (larger batches fall out of the caches and cost
    more per window). On CUDA it runs the model's network in whole batches.

    Args:
        model: the loaded model; its labels, rate, window and hop become the engine's.
        precision: ``"fp32"`` (default) or ``"bf16"`` (autocast: convolutions and matrix
            products in bfloat16; on CPUs with AMX the fastest engine, docs/speed.md).
    """

    def __init__(self, model: TaggerModel, precision: str = "fp32") -> None:
        check_engine("torch", precision)
        self.model = model
        self.precision = precision
        self.labels = tuple(model.labels)
        self.sample_rate_hz = int(model.sample_rate_hz)
        self.window_samples = int(model.window_samples)
        self.hop_samples = int(model.hop_samples)
        on_cpu = model.device.type == "cpu"
        self._network = cpu_inference_form(model.network) if on_cpu else model.network
        self._batch_windows = CPU_BATCH_WINDOWS if on_cpu else None
        self.rumble_filter: RumbleFilter | None = model.rumble_filter

    @property
    def name(self) -> str:
        """Back end, device and precision, e.g. ``"torch-cpu-fp32"``."""
        return f"torch-{self.model.device.type}-{self.precision}"

    @property
    def description(self) -> dict[str, object]:
        """What runs: engine, provider (the torch device), precision and CPU threads."""
        return {"engine": "torch", "provider": str(self.model.device), "precision": self.precision,
                "threads": torch.get_num_threads()}

    def predict(self, audio: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C] float32 for audio [B, N] float32."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 2:
            raise ValueError(f"expected audio shaped [batch, samples], got {audio.shape}")
        step = self._batch_windows or max(1, audio.shape[0])
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            parts = [self.model.predict(audio[first : first + step], self._network)
                     for first in range(0, audio.shape[0], step)]
        return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros((0, len(self.labels)), np.float32)

    def warm_up(self) -> None:
        """Run once on a silent window (see :func:`warm_up_engine`)."""
        self.predict(np.zeros((1, self.window_samples), np.float32))


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
        intra_op_threads: CPU threads per operator (default ``None``: the cores this process
            may run on, ``os.sched_getaffinity``, which is ONNX Runtime's own choice where the
            process may use every core).
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
        self.threads = intra_op_threads if intra_op_threads is not None else _usable_cores()
        available = set(ort.get_available_providers())
        requested = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        # ONNX Runtime's threads spin after each run unless told not to, stealing the cores from
        # the torch front end that runs between the batches of a file (measured: 2x slower a window)
        self.session = self._new_session(requested, spinning=False)
        self.providers: tuple[str, ...] = tuple(self.session.get_providers())
        self._window_session: Any = None
        self._window_session_lock = threading.Lock()  # streams of one model share its engine
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.front_end: FrontEnd | None = None
        config = from_dict(ModelConfig, json.loads(facts["config"]), source=f"{self.path} rtag_config")
        self.rumble_filter: RumbleFilter | None = RumbleFilter.of(config)
        if self.input_names != ("audio",) or facts.get("front_end") == "host":
            # int8 layers err far more than a single-precision FFT does (5e-3 dB), which is faster
            fft_precision = "single" if self.precision == "int8" else "double"
            self.front_end = FrontEnd(config, self.input_names, fft_precision).eval()
        if "CUDAExecutionProvider" in providers and "CUDAExecutionProvider" not in self.providers:
            # loud only where a GPU exists (torch sees it) and ONNX Runtime still cannot use it
            level = logging.WARNING if _gpu_present() else logging.INFO
            log.log(level, "ONNX Runtime cannot use CUDA here; running on %s", ", ".join(self.providers))

    def _new_session(self, providers: Sequence[str], spinning: bool) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.intra_op_num_threads = self.threads
        # a provider library that cannot load logs an error of its own; it is reported once, by the caller
        ort.set_default_logger_severity(4)
        try:
            return ort.InferenceSession(str(self.path), options, providers=list(providers))
        finally:
            ort.set_default_logger_severity(2)

    def _session_for(self, batch: int) -> Any:
        """The session for a batch: one window on the CPU, as a stream sends them a hop apart, runs
        in a second session whose threads spin between the graph's operators instead of sleeping
        (one int8 window after 1.1 s idle on 2 cores: p50 34 -> 26 ms, p99 45-49 -> 35-36 ms; it is
        made on the first such call); batches keep the session that does not spin."""
        if batch != 1 or self.providers[0] != "CPUExecutionProvider":
            return self.session
        with self._window_session_lock:
            if self._window_session is None:
                self._window_session = self._new_session(["CPUExecutionProvider"], spinning=True)
        return self._window_session

    @property
    def name(self) -> str:
        """Back end, the provider that runs and the precision, e.g. ``"onnxruntime-CPUExecutionProvider-int8"``."""
        return f"onnxruntime-{self.providers[0]}-{self.precision}"

    @property
    def description(self) -> dict[str, object]:
        """What runs: engine, provider (the execution provider running it), precision and threads."""
        return {"engine": "onnx", "provider": self.providers[0], "precision": self.precision, "threads": self.threads}

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
        return self._session_for(audio.shape[0]).run(["probabilities"], feeds)[0]

    def warm_up(self) -> None:
        """Run once on a silent window (see :func:`warm_up_engine`)."""
        self.predict(np.zeros((1, self.window_samples), np.float32))


def rumble_filter_of(engine: Engine) -> RumbleFilter | None:
    """The rumble filter of the network behind ``engine``; ``None`` where it has none or the
    engine does not say (an engine of the user's own that only has :class:`Engine`'s attributes)."""
    return getattr(engine, "rumble_filter", None)


def warm_up_engine(engine: Engine) -> None:
    """Let ``engine`` do its one-time set-up now, on the calling thread, if it has a ``warm_up``
    method (rtag's engines do).

    The first call of an engine is slow: oneDNN picks and builds its kernels, ONNX Runtime
    plans its memory (torch bf16 on two CPU cores: about 80 ms against 15-20 ms later). The
    stream's worker calls this before its first window, so no window waits for it.
    """
    warm_up = getattr(engine, "warm_up", None)
    if callable(warm_up):
        warm_up()


def _gpu_present() -> bool:
    return torch.cuda.is_available()


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _nvidia_gpu_present() -> bool:
    """A GPU that CUDA could use: torch sees one, or the NVIDIA driver's device node exists
    (ONNX Runtime's CUDA provider can use it even beside a CPU-only torch)."""
    return _gpu_present() or Path("/dev/nvidiactl").exists()


def check_engine(kind: str, precision: str = "fp32") -> None:
    """Raise ValueError unless ``kind`` is an engine and ``precision`` one of its precisions
    (``"auto"`` for either lets :func:`create_engine` choose)."""
    if kind not in ENGINE_KINDS:
        raise ValueError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINE_KINDS)}")
    if precision == AUTO:
        return
    if kind == AUTO:
        if not any(precision in precisions for precisions in PRECISIONS.values()):
            choices = sorted({p for precisions in PRECISIONS.values() for p in precisions})
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join([AUTO, *choices])}")
        return
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
            if AUTO in (kind, precision):
                raise ValueError(f"{item!r}: name an engine and a precision to compare, not {AUTO!r}")
            check_engine(kind, precision or "fp32")
            pairs.append((kind, precision or "fp32"))
    if not pairs:
        raise ValueError(f"{text!r} names no engine")
    return pairs


def create_engine(
    model: TaggerModel, kind: str = AUTO, precision: str = AUTO, onnx_dir: str | Path | None = None
) -> Engine:
    """An engine of ``kind`` and ``precision`` for ``model``.

    Args:
        model: the loaded model.
        kind: ``"auto"`` (default: see below), ``"torch"`` (the model's own device) or
            ``"onnx"`` (ONNX Runtime on CUDA when it can, else on the CPU).
        precision: ``"auto"`` (default: the engine's fastest that holds the model's accuracy:
            int8 for onnx when a matching int8 graph is kept beside the bundle, else fp32),
            ``"fp32"``, ``"bf16"`` for torch, ``"int8"`` for onnx, which runs the int8 graph
            beside the model's bundle (``NAME.int8.onnx``, made by ``rtag export BUNDLE
            --precision int8``).
        onnx_dir: where the fp32 ONNX export is written for ``"onnx"`` (default: a temporary
            folder kept for the life of the process).

    With ``kind="auto"`` the first of these that can run here is chosen: where a GPU can
    really be used, ONNX Runtime's CUDA provider (fp32), else torch on CUDA; on a CPU with AMX
    (:func:`cpu_has_amx`), torch bf16; on other CPUs, the int8 graph (when it was made from
    these weights, and, on a CPU without VNNI, with 7-bit weights: :mod:`rtag.quantize`), else
    ONNX Runtime fp32, else torch fp32. A precision given with ``"auto"``
    narrows the choice to engines that have it (``bf16``: torch; ``int8``: onnx; ``fp32``: any,
    fastest first). What was chosen is in the
    engine's ``description`` (:func:`describe_engine`).

    Raises:
        ValueError: for an unknown kind or precision, or an int8 request for a model that has
            no int8 graph (the message says how to make one).
    """
    check_engine(kind, precision)
    if kind == AUTO:
        return _auto_engine(model, precision, onnx_dir)
    if kind == "torch":
        return TorchEngine(model, "fp32" if precision == AUTO else precision)
    if precision == "int8":
        return _int8_engine(model)
    return (_matching_int8_engine(model) if precision == AUTO else None) or _onnx_fp32_engine(model, onnx_dir)


def _cpu_flags() -> set[str]:
    """The ``flags`` of Linux's /proc/cpuinfo (empty where that cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            return next((set(line.split(":", 1)[1].split()) for line in handle if line.startswith("flags")), set())
    except OSError:
        return set()


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX bfloat16 tiles (the ``amx_bf16`` flag of Linux's /proc/cpuinfo;
    ``False`` where that cannot be read)."""
    return "amx_bf16" in _cpu_flags()


def cpu_has_vnni() -> bool:
    """Whether this CPU has integer dot products for int8 (``avx512_vnni`` or ``avx_vnni`` in
    Linux's /proc/cpuinfo; ``False`` where that cannot be read)."""
    return bool({"avx512_vnni", "avx_vnni"} & _cpu_flags())


def _auto_engine(model: TaggerModel, precision: str, onnx_dir: str | Path | None) -> Engine:
    if precision == "bf16":
        return TorchEngine(model, "bf16")
    if precision == "int8":
        return _int8_engine(model)
    onnx: OnnxEngine | None = None
    if _nvidia_gpu_present():
        onnx = _onnx_fp32_or_none(model, onnx_dir)
        if onnx is not None and onnx.providers[0] == "CUDAExecutionProvider":
            return onnx
        if model.device.type == "cuda":
            return TorchEngine(model, "fp32")
    if precision == AUTO and model.device.type == "cpu" and cpu_has_amx():
        return TorchEngine(model, "bf16")  # AMX: about 2x faster than int8 (docs/speed.md)
    # on the CPU: the int8 graph, else the fp32 export (the one made above when CUDA did not run)
    engine = (_matching_int8_engine(model) if precision == AUTO else None) or onnx or _onnx_fp32_or_none(model, onnx_dir)
    return engine if engine is not None else TorchEngine(model, "fp32")


def _onnx_fp32_or_none(model: TaggerModel, onnx_dir: str | Path | None) -> OnnxEngine | None:
    """:func:`_onnx_fp32_engine`, or ``None`` (said) when the model cannot be exported or loaded."""
    try:
        return _onnx_fp32_engine(model, onnx_dir)
    except Exception as exc:  # noqa: BLE001 - any failure to export or load leaves torch, which always runs
        log.warning("ONNX Runtime cannot run this model (%s); running it with torch", exc)
        return None


def _matching_int8_engine(model: TaggerModel) -> OnnxEngine | None:
    """The int8 engine of the graph beside the model's bundle, or ``None``: no graph, or one made
    from other weights, unreadable, or whose weights overflow on this CPU (said, so fp32 runs
    instead)."""
    from rtag.quantize import int8_graph_for

    if int8_graph_for(model) is None:
        return None
    try:
        return _int8_engine(model, refuse_overflow=True)
    except ValueError as exc:
        log.warning("%s; running fp32", exc)
        return None


def _int8_weights_overflow(graph: Path) -> bool:
    """Whether an int8 graph's weights use all 8 bits (graphs made before 7-bit weights, see
    :mod:`rtag.quantize`, say no ``weight_bits``)."""
    from rtag.onnx_export import read_onnx_metadata
    from rtag.quantize import WEIGHT_BITS

    return read_onnx_metadata(graph).get("weight_bits") != str(WEIGHT_BITS)


def _int8_engine(model: TaggerModel, refuse_overflow: bool = False) -> OnnxEngine:
    """The int8 engine of the graph beside the model's bundle. A graph with full-range weights on
    a CPU without VNNI is refused (``refuse_overflow``) or run with a warning."""
    from rtag.quantize import int8_graph_for, int8_graph_path

    graph = int8_graph_for(model)
    if graph is None:
        where = "this in-memory model" if model.source_path is None else str(int8_graph_path(model.source_path))
        raise ValueError(
            f"no int8 graph for {where}; make one with: rtag export BUNDLE --precision int8 "
            "--calibration AUDIO_DIR -o NAME.int8.onnx (beside NAME.rtag)"
        )
    if not cpu_has_vnni() and _int8_weights_overflow(graph):
        overflow = (
            f"{graph} has full-range 8-bit weights, whose products overflow ONNX Runtime's int8 arithmetic "
            "on a CPU without VNNI; make it again with: rtag export BUNDLE --precision int8 --calibration AUDIO_DIR"
        )
        if refuse_overflow:
            raise ValueError(overflow)
        log.warning(overflow)
    return OnnxEngine(graph, weights_sha256=model.weights_sha256)


def _onnx_fp32_engine(model: TaggerModel, onnx_dir: str | Path | None) -> OnnxEngine:
    from rtag.onnx_export import export_onnx

    if onnx_dir is not None:
        folder = Path(onnx_dir)
    else:  # the session has read the file once made, but keep it for the process; removed at exit
        folder = Path(tempfile.mkdtemp(prefix="rtag-onnx-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return OnnxEngine(export_onnx(model, folder / "model.onnx", front_end="host"))


def describe_engine(engine: Engine) -> str:
    """One line saying what runs, e.g. ``"onnx int8 on CPUExecutionProvider, 2 threads"``
    (an engine of another kind: its class name)."""
    facts = getattr(engine, "description", None)
    if not isinstance(facts, dict):
        return type(engine).__name__
    return f"{facts['engine']} {facts['precision']} on {facts['provider']}, {facts['threads']} thread(s)"


def as_engine(model: object, kind: str = AUTO, precision: str = AUTO) -> Engine:
    """Return ``model`` if it already is an :class:`Engine`, else the engine of ``kind`` and
    ``precision`` of a TaggerModel (:meth:`~rtag.model.TaggerModel.engine`: made once per model
    and kept, so streams made one after another share it)."""
    if hasattr(model, "network") and hasattr(model, "predict"):
        return model.engine(kind, precision)  # type: ignore[attr-defined]
    if isinstance(model, Engine):
        return model
    raise TypeError(
        f"expected a TaggerModel or an Engine (labels, sample_rate_hz, window_samples, hop_samples, "
        f"predict), got {type(model).__name__}"
    )
