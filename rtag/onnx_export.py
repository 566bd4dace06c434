"""Export a model to ONNX: one graph from raw audio to class probabilities.

The exported graph has one input, ``audio`` (float32 [batch, window_samples] at
``sample_rate_hz``), and one output, ``probabilities`` (float32 [batch, num_classes]); the
log-mel front end is inside it (ONNX's STFT operator). The ONNX model's metadata carries what a
runtime needs to use it without the bundle: ``rtag_labels`` (JSON list), ``rtag_sample_rate_hz``,
``rtag_window_samples``, ``rtag_hop_samples``, ``rtag_config`` (the ModelConfig as JSON) and
``rtag_provenance`` (JSON).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from rtag.config import to_dict
from rtag.model import TaggerModel

__all__ = ["ONNX_OPSET", "export_onnx", "read_onnx_metadata"]

ONNX_OPSET = 17  # the first opset with the STFT operator


class _ProbabilityGraph(nn.Module):
    """The network followed by a softmax: what the exported graph computes."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(audio), dim=-1)


def export_onnx(model: TaggerModel, path: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` as an ONNX file with a dynamic batch dimension and rtag metadata.

    Args:
        model: the model to export (its network is exported from the CPU, in eval mode).
        path: the ``.onnx`` file to write.
        opset: ONNX opset (default 17; at least 17, which introduced STFT).

    Returns:
        The path written. The graph is checked with ``onnx.checker`` before it is returned.
    """
    if opset < ONNX_OPSET:
        raise ValueError(f"opset {opset} has no STFT operator; use {ONNX_OPSET} or later")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = _ProbabilityGraph(model.network).to("cpu").eval()
    example = torch.zeros(1, model.window_samples)
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer's notes on constant shapes and the exporter's deprecation notice are expected
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            opset_version=opset,
            dynamo=False,
            input_names=["audio"],
            output_names=["probabilities"],
            dynamic_axes={"audio": {0: "batch"}, "probabilities": {0: "batch"}},
        )
    model.network.to(model.device)
    proto = onnx.load(str(path))
    facts = {
        "rtag_labels": json.dumps(list(model.labels)),
        "rtag_sample_rate_hz": str(model.sample_rate_hz),
        "rtag_window_samples": str(model.window_samples),
        "rtag_hop_samples": str(model.hop_samples),
        "rtag_config": json.dumps(to_dict(model.config)),
        "rtag_provenance": json.dumps(model.provenance, default=str),
    }
    del proto.metadata_props[:]
    for key, value in facts.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = "rtag tagger: raw audio [batch, window_samples] -> class probabilities"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The rtag metadata of an exported ONNX file (keys without the ``rtag_`` prefix).

    Raises:
        ValueError: if the file is not an ONNX model exported by rtag.
    """
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... depending on the damage
        raise ValueError(f"{path}: not a readable ONNX model ({exc})") from None
    facts = {p.key[len("rtag_") :]: p.value for p in proto.metadata_props if p.key.startswith("rtag_")}
    missing = {"labels", "sample_rate_hz", "window_samples", "hop_samples"} - set(facts)
    if missing:
        raise ValueError(f"{path}: ONNX model lacks rtag metadata ({', '.join(sorted(missing))})")
    return facts
