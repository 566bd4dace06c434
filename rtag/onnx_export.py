"""Export a model to ONNX.

Two forms, chosen by ``front_end``:

- ``"graph"`` (default): one graph from raw audio to class probabilities. One input, ``audio``
  (float32 [batch, window_samples] at ``sample_rate_hz``); the peak normalisation and the
  log-mel front end are inside (ONNX's STFT operator), so any ONNX runtime can use the file alone.
- ``"host"``: the graph starts after the front end. Its inputs are the network's
  :attr:`~rtag.networks.TaggerNetwork.input_names`: ``audio`` (peak-normalised, [batch,
  window_samples]) and/or ``spectrogram`` ([batch, 1, n_mels, spec_frames], dB), which the
  caller computes with :class:`rtag.networks.FrontEnd` built from ``rtag_config``. ONNX
  Runtime's STFT kernel costs 15-20 ms per 2 s window on a CPU where torch's FFT takes about 2 ms,
  so rtag's own ONNX Runtime engine uses this form; it is also the form that is quantized
  (:mod:`rtag.quantize`).

Both have one output, ``probabilities`` (float32 [batch, num_classes]), and carry what a runtime
needs as ONNX metadata: ``rtag_labels`` (JSON list), ``rtag_sample_rate_hz``,
``rtag_window_samples``, ``rtag_hop_samples``, ``rtag_config`` (the ModelConfig as JSON),
``rtag_provenance`` (JSON), ``rtag_front_end`` (``graph`` or ``host``), ``rtag_precision``
(``fp32`` or ``int8``) and ``rtag_weights_sha256`` (of the bundle's weights, when known).
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
from rtag.networks import TaggerNetwork

__all__ = ["FRONT_ENDS", "ONNX_OPSET", "export_onnx", "read_onnx_metadata", "write_onnx_metadata"]

ONNX_OPSET = 17  # the first opset with the STFT operator
FRONT_ENDS = ("graph", "host")


class _ProbabilityGraph(nn.Module):
    """The network followed by a softmax: what the graph form computes."""

    def __init__(self, network: TaggerNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(audio), dim=-1)


class _HostFrontEndGraph(nn.Module):
    """The network after its front end, followed by a softmax: what the host form computes."""

    def __init__(self, network: TaggerNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network.classify(*inputs), dim=-1)


def export_onnx(model: TaggerModel, path: str | Path, opset: int = ONNX_OPSET, front_end: str = "graph") -> Path:
    """Write ``model`` as an ONNX file with a dynamic batch dimension and rtag metadata.

    Args:
        model: the model to export (its network is exported from the CPU, in eval mode).
        path: the ``.onnx`` file to write.
        opset: ONNX opset (default 17; at least 17, which introduced STFT).
        front_end: ``"graph"`` (default; log-mel inside) or ``"host"`` (the graph takes the
            front end's outputs); see the module's documentation.

    Returns:
        The path written. The graph is checked with ``onnx.checker`` before it is returned.
    """
    if opset < ONNX_OPSET:
        raise ValueError(f"opset {opset} has no STFT operator; use {ONNX_OPSET} or later")
    if front_end not in FRONT_ENDS:
        raise ValueError(f"front_end must be one of {', '.join(FRONT_ENDS)}, not {front_end!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the exporter puts the module it is given back in that module's mode: the wrappers are in eval mode
    network = model.network.to("cpu").eval()
    if front_end == "graph":
        graph: nn.Module = _ProbabilityGraph(network).eval()
        input_names = ["audio"]
        examples: tuple[torch.Tensor, ...] = (torch.zeros(1, model.window_samples),)
    else:
        graph = _HostFrontEndGraph(network).eval()
        input_names = list(network.input_names)
        with torch.no_grad():
            examples = network.front_end(torch.zeros(1, model.window_samples))
    dynamic_axes = {name: {0: "batch"} for name in [*input_names, "probabilities"]}
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer's notes on constant shapes and the exporter's deprecation notice are expected
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            examples,
            str(path),
            opset_version=opset,
            dynamo=False,
            input_names=input_names,
            output_names=["probabilities"],
            dynamic_axes=dynamic_axes,
        )
    model.network.to(model.device)
    facts = {
        "labels": json.dumps(list(model.labels)),
        "sample_rate_hz": str(model.sample_rate_hz),
        "window_samples": str(model.window_samples),
        "hop_samples": str(model.hop_samples),
        "config": json.dumps(to_dict(model.config)),
        "provenance": json.dumps(model.provenance, default=str),
        "front_end": front_end,
        "precision": "fp32",
        "weights_sha256": model.weights_sha256 or "",
    }
    write_onnx_metadata(path, facts)
    return path


def write_onnx_metadata(path: str | Path, facts: dict[str, str]) -> None:
    """Replace the metadata of the ONNX file ``path`` by ``facts`` (keys get the ``rtag_`` prefix),
    check the model with ``onnx.checker`` and save it in place."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in facts.items():
        proto.metadata_props.add(key=f"rtag_{key}", value=value)
    inputs = ", ".join(i.name for i in proto.graph.input)
    proto.doc_string = f"rtag tagger: {inputs} -> class probabilities"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


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
