"""Static int8 quantization of a model with ONNX Runtime, calibrated on real audio.

The quantized graph is the host-front-end form of :func:`rtag.onnx_export.export_onnx` (peak
normalisation and log-mel stay in float, computed by the engine with torch), with every
convolution and dense layer in int8: weights per output channel (signed), activations per
tensor (unsigned) with ranges measured on calibration windows, in ONNX Runtime's QDQ format.
On CPUs with VNNI, ONNX Runtime runs those layers with integer dot products. The weights use 7 of
the 8 bits (ONNX Runtime's ``reduce_range``, values in [-64, 64]): on x86 CPUs without VNNI (AVX2,
AVX-512 without VNNI) ONNX Runtime multiplies uint8 by int8 with an instruction that adds pairs of
products in 16 bits, and full-range weights overflow it (255 * 127 * 2 > 32767); 7-bit weights
cannot, and their results match the fp32 network as closely on every CPU. BatchNorm layers
(which follow activations and pooling in these networks, so cannot be folded into a
convolution), the last dense layer and the softmax stay in float: quantized logits or
probabilities would be coarse steps of 1/255 of their range.

The graph of a bundle ``NAME.rtag`` lives beside it as ``NAME.int8.onnx`` (see
:func:`int8_graph_path`); its metadata names the bundle's weights checksum, so a graph made for
other weights is refused.
"""

from __future__ import annotations

import csv
import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from rtag.audio_io import AUDIO_SUFFIXES, AudioFileError, audio_files_in, load_audio
from rtag.model import TaggerModel
from rtag.networks import FrontEnd
from rtag.onnx_export import export_onnx, read_onnx_metadata, write_onnx_metadata
from rtag.tta import tta_inputs

__all__ = [
    "AUDIO_SUFFIXES",
    "CALIBRATION_METHODS",
    "WEIGHT_BITS",
    "calibration_windows",
    "int8_graph_for",
    "int8_graph_path",
    "quantize_onnx",
]

log = logging.getLogger(__name__)

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
QUANTIZED_OPS = ["Conv", "Gemm", "Relu", "MaxPool", "Concat", "Flatten"]
WEIGHT_BITS = 7  # int8 weights in [-64, 64]: no 16-bit overflow on CPUs without VNNI (module docstring)


def int8_graph_path(bundle_path: str | Path) -> Path:
    """Where the int8 graph of the bundle ``bundle_path`` is kept: ``NAME.rtag`` -> ``NAME.int8.onnx``."""
    return Path(bundle_path).with_suffix(".int8.onnx")


def int8_graph_for(model: TaggerModel) -> Path | None:
    """The int8 graph kept beside ``model``'s bundle, or ``None`` (in-memory model, or no graph made)."""
    if model.source_path is None:
        return None
    path = int8_graph_path(model.source_path)
    return path if path.is_file() else None


def _manifest_files(manifest: Path) -> list[Path]:
    """The training clips of a manifest CSV (``path`` column, relative to it; rows whose ``split``
    is not ``train`` are left out, so calibration never sees held-out clips)."""
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if "path" not in (reader.fieldnames or ()):
            raise ValueError(f"{manifest}: a calibration manifest needs a 'path' column")
        return [manifest.parent / row["path"] for row in reader if (row.get("split") or "train") == "train"]


def _audio_files(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file() and path.suffix.lower() == ".csv":
            files += _manifest_files(path)
        elif path.is_dir():
            files += audio_files_in(path)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such calibration file or folder")
    return files


def calibration_windows(
    paths: Sequence[str | Path], model: TaggerModel, max_windows: int = 256, seed: int = 0
) -> tuple[np.ndarray, dict[str, int]]:
    """Model input windows [K, window_samples] cut from audio files, for calibration.

    Files (folders are searched for audio files; a ``.csv`` manifest gives its ``train`` rows)
    are visited in a seeded random order; each is
    cut into windows every ``hop_samples`` of the model (a clip shorter than a window is
    zero-padded) and gives at most ``ceil(max_windows / files)`` of them, drawn at random, until
    ``max_windows`` are collected, so the set spreads over the files and memory stays bounded.

    Returns:
        The windows and counts: ``files``, ``files_unreadable`` (each reported, then skipped)
        and ``windows``.

    Raises:
        FileNotFoundError: if a path does not exist.
        ValueError: if no file yields a window, or ``max_windows`` is not positive.
    """
    if max_windows <= 0:
        raise ValueError(f"max_windows must be positive, not {max_windows}")
    files = _audio_files(paths)
    rng = np.random.default_rng(seed)
    per_file = -(-max_windows // max(len(files), 1))
    windows: list[np.ndarray] = []
    unreadable = 0
    for index in rng.permutation(len(files)):
        if len(windows) >= max_windows:
            break
        try:
            clip = load_audio(files[index], model.sample_rate_hz)
        except AudioFileError as exc:
            log.warning("calibration: skipping %s", exc)
            unreadable += 1
            continue
        inputs = tta_inputs(clip, model.window_samples, model.hop_samples)
        picks = rng.choice(len(inputs), size=min(per_file, len(inputs), max_windows - len(windows)), replace=False)
        windows.extend(inputs[np.sort(picks)])
    if not windows:
        raise ValueError(f"no calibration audio in {', '.join(map(str, paths))}")
    stacked = np.stack(windows).astype(np.float32)
    return stacked, {"files": len(files), "files_unreadable": unreadable, "windows": int(stacked.shape[0])}


class _FrontEndReader:
    """Feeds the host graph's inputs, one window at a time, to ONNX Runtime's calibrator."""

    def __init__(self, model: TaggerModel, windows: np.ndarray) -> None:
        self.names = model.network.input_names
        self.front_end = FrontEnd(model.config, self.names).eval()
        self.windows = windows
        self.rewind()

    def rewind(self) -> None:
        self._iterator: Iterator[np.ndarray] = iter(self.windows)

    @torch.inference_mode()
    def get_next(self) -> dict[str, np.ndarray] | None:
        window = next(self._iterator, None)
        if window is None:
            return None
        inputs = self.front_end(torch.from_numpy(window[None, :]))
        return {name: tensor.numpy() for name, tensor in zip(self.names, inputs)}


def quantize_onnx(
    model: TaggerModel,
    path: str | Path,
    windows: np.ndarray,
    method: str = "minmax",
    calibration_facts: dict[str, object] | None = None,
) -> Path:
    """Write the int8 host-front-end graph of ``model`` to ``path``, calibrated on ``windows``.

    Args:
        model: the fp32 model.
        path: the ``.onnx`` file to write.
        windows: calibration inputs [K, window_samples] (see :func:`calibration_windows`).
        method: activation range estimate, ``"minmax"`` (default), ``"percentile"`` (99.999th)
            or ``"entropy"``.
        calibration_facts: what the windows are (kept in the metadata as ``rtag_calibration``).

    Returns:
        The path written.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(CALIBRATION_METHODS)}, not {method!r}")
    if windows.ndim != 2 or windows.shape[1] != model.window_samples or windows.shape[0] == 0:
        raise ValueError(f"calibration windows must be shaped [K >= 1, {model.window_samples}], got {windows.shape}")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtag-quantize-") as scratch:
        fp32 = export_onnx(model, Path(scratch) / "fp32.onnx", front_end="host")
        facts = read_onnx_metadata(fp32)
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))
        nodes = onnx.load(str(prepared)).graph.node
        # the dense head stays in float: its input features differ in scale by orders of magnitude
        # (a trained head takes them standardised, the standardisation folded into its first
        # layer), so one uint8 range for them loses the small ones; it is a sliver of the compute
        in_float = [n.name for n in nodes if n.op_type in ("Softmax", "Gemm", "Concat")]
        quantize_static(
            str(prepared),
            str(path),
            _FrontEndReader(model, windows),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,  # WEIGHT_BITS
            op_types_to_quantize=QUANTIZED_OPS,
            nodes_to_exclude=in_float,
            calibrate_method=methods[method],
            extra_options={"CalibPercentile": 99.999} if method == "percentile" else None,
        )
    facts["precision"] = "int8"
    facts["weight_bits"] = str(WEIGHT_BITS)
    facts["calibration"] = json.dumps({"method": method, "windows": int(windows.shape[0]), **(calibration_facts or {})})
    write_onnx_metadata(path, facts)
    return path
