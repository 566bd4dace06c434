"""Model bundles: one file with weights, architecture, labels, audio parameters and provenance.

A bundle is a safetensors file. Its tensors are the network's ``state_dict``; its string
metadata holds:

- ``format`` = ``"rtag-bundle"`` and ``format_version`` (this rtag reads versions up to
  :data:`FORMAT_VERSION`);
- ``config``: the :class:`rtag.config.ModelConfig` as JSON (architecture, sample rate, window);
- ``labels``: the class names as a JSON list, in output order;
- ``hop_samples``: the default step between streaming windows (51200 for the 2 s model);
- ``provenance``: JSON (training data, metrics, git commit, creation time, ...);
- ``weights_sha256``: a checksum of all tensor bytes, so a flipped bit is caught at load time;
- ``metadata_sha256`` (format 2 on): a checksum of every other metadata entry, so a flipped bit
  in a label, the config or the hop is caught too.

:func:`read_bundle` checks all of it and raises :class:`BundleError` naming the file and what is
wrong; nothing half-loaded is ever returned.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from rtag import __version__
from rtag.config import ConfigError, ModelConfig, from_dict, to_dict

__all__ = [
    "DEFAULT_HOP_SAMPLES", "FORMAT_VERSION", "Bundle", "BundleError", "default_hop_samples", "read_bundle",
    "read_metadata", "save_bundle",
]

# the technical report's efficient streaming step for the 2 s model (1.16 s at 44.1 kHz)
DEFAULT_HOP_SAMPLES = 51200


def default_hop_samples(window_samples: int) -> int:
    """The streaming step a model gets when none is given: 51200 samples, or its window when shorter."""
    return min(DEFAULT_HOP_SAMPLES, window_samples)


FORMAT_NAME = "rtag-bundle"
FORMAT_VERSION = 2


class BundleError(ValueError):
    """A model bundle cannot be used; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    """The validated content of a model bundle.

    Attributes:
        path: the file it was read from.
        format_version: the bundle format version of the file.
        config: the network architecture and audio parameters.
        labels: class names in output order.
        hop_samples: default step between streaming windows, in samples.
        provenance: free-form facts about how the model was made (data, metrics, commit).
        state_dict: the network weights (float32).
        weights_sha256: the checksum of the weights as stored (identifies the model).
    """

    path: Path
    format_version: int
    config: ModelConfig
    labels: tuple[str, ...]
    hop_samples: int
    provenance: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    weights_sha256: str

    def build_network(self) -> torch.nn.Module:
        """The network described by ``config`` with these weights loaded, in eval mode.

        Raises:
            BundleError: if the weights do not fit the architecture.
        """
        from rtag.networks import build_network

        network = build_network(self.config)
        expected = network.state_dict()
        missing = sorted(set(expected) - set(self.state_dict))
        unexpected = sorted(set(self.state_dict) - set(expected))
        wrong_shape = [
            f"{k} {tuple(self.state_dict[k].shape)} (needs {tuple(v.shape)})"
            for k, v in expected.items()
            if k in self.state_dict and self.state_dict[k].shape != v.shape
        ]
        if missing or unexpected or wrong_shape:
            problems = []
            if missing:
                problems.append(f"missing {len(missing)} tensors (first: {missing[0]})")
            if unexpected:
                problems.append(f"{len(unexpected)} unexpected tensors (first: {unexpected[0]})")
            if wrong_shape:
                problems.append(f"{len(wrong_shape)} tensors of the wrong shape (first: {wrong_shape[0]})")
            raise BundleError(
                f"{self.path}: weights do not match the architecture in its config: " + "; ".join(problems)
            )
        network.load_state_dict(self.state_dict)
        return network.eval()


def _weights_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode("utf-8"))
        digest.update(str(tensor.dtype).encode("ascii"))
        digest.update(str(tuple(tensor.shape)).encode("ascii"))
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _metadata_digest(metadata: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(k for k in metadata if k != "metadata_sha256"):
        digest.update(json.dumps([key, metadata[key]]).encode("utf-8"))
    return digest.hexdigest()


def save_bundle(
    path: str | Path,
    network: torch.nn.Module,
    config: ModelConfig,
    labels: Sequence[str],
    *,
    hop_samples: int | None = None,
    provenance: Mapping[str, Any] | None = None,
    weights_dtype: str = "float32",
) -> Path:
    """Write ``network`` and its description to one bundle file, atomically.

    Args:
        path: the file to write (conventionally ``*.rtag``); replaced only once fully written.
        network: the trained network (any device); its ``state_dict`` is stored.
        config: the architecture it was built from.
        labels: class names in output order; ``len(labels)`` must equal ``config.num_classes``.
        hop_samples: default step between streaming windows (default: 51200, the technical
            report's efficient 1.2 s step, or the window length when the window is shorter).
        provenance: JSON-serialisable facts (data, metrics, commit); the rtag version and the
            creation time are added.
        weights_dtype: ``"float32"`` (default) or ``"float16"`` to halve the file; weights are
            read back as float32 either way.

    Returns:
        The path written.
    """
    labels = tuple(labels)
    _check_labels(labels, config, Path(path))
    if hop_samples is None:
        hop_samples = default_hop_samples(config.window_samples)
    if hop_samples <= 0:
        raise BundleError(f"{path}: hop_samples must be positive, not {hop_samples}")
    if weights_dtype not in ("float32", "float16"):
        raise BundleError(f"{path}: weights_dtype must be 'float32' or 'float16', not {weights_dtype!r}")
    dtype = torch.float16 if weights_dtype == "float16" else torch.float32
    state = {
        name: (t.detach().cpu().to(dtype) if t.is_floating_point() else t.detach().cpu()).contiguous()
        for name, t in network.state_dict().items()
    }
    facts = dict(provenance or {})
    facts.setdefault("rtag_version", __version__)
    facts.setdefault("created_utc", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(to_dict(config)),
        "labels": json.dumps(list(labels)),
        "hop_samples": str(hop_samples),
        "provenance": json.dumps(facts, default=str),
        "weights_sha256": _weights_digest(state),
    }
    metadata["metadata_sha256"] = _metadata_digest(metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp_name, metadata=metadata)
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def _check_labels(labels: tuple[str, ...], config: ModelConfig, path: Path) -> None:
    if not all(isinstance(label, str) and label for label in labels):
        raise BundleError(f"{path}: labels must be non-empty strings")
    if len(set(labels)) != len(labels):
        raise BundleError(f"{path}: labels must be unique")
    if len(labels) != config.num_classes:
        raise BundleError(
            f"{path}: {len(labels)} labels for a network with {config.num_classes} outputs"
        )


def _json_field(metadata: Mapping[str, str], key: str, path: Path) -> Any:
    if key not in metadata:
        raise BundleError(f"{path}: bundle metadata lacks '{key}'")
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: bundle metadata '{key}' is not valid JSON ({exc})") from None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The raw string metadata of a bundle, without loading its weights.

    Raises:
        BundleError: if the file is missing, truncated, corrupt or not an rtag bundle, or was
            written by a newer rtag.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: bundle file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{path}: not a readable rtag bundle, truncated or corrupt ({exc})") from None
    if metadata.get("format") != FORMAT_NAME:
        raise BundleError(f"{path}: not an rtag bundle (safetensors file without rtag metadata)")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise BundleError(f"{path}: bundle format_version {metadata.get('format_version')!r} is not a number") from None
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{path}: written by a newer rtag (bundle format {version}; this rtag {__version__} "
            f"reads up to {FORMAT_VERSION}); upgrade rtag to load it"
        )
    if version < 1:
        raise BundleError(f"{path}: bundle format_version {version} is not valid")
    if version >= 2 and metadata.get("metadata_sha256") != _metadata_digest(metadata):
        raise BundleError(f"{path}: bundle metadata is corrupt (checksum mismatch)")
    return metadata


def read_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle written by :func:`save_bundle`.

    Raises:
        BundleError: if the file is missing, truncated or corrupt (checksum), not an rtag bundle,
            from a newer format, or its config, labels or weights are inconsistent; the message
            names the file and the problem.
    """
    path = Path(path)
    metadata = read_metadata(path)
    try:
        config = from_dict(ModelConfig, _json_field(metadata, "config", path), source=f"{path} (config)")
    except ConfigError as exc:
        raise BundleError(str(exc)) from None
    labels = _json_field(metadata, "labels", path)
    if not isinstance(labels, list):
        raise BundleError(f"{path}: bundle labels must be a list")
    labels = tuple(labels)
    _check_labels(labels, config, path)
    try:
        hop_samples = int(metadata.get("hop_samples", ""))
    except ValueError:
        raise BundleError(f"{path}: bundle hop_samples {metadata.get('hop_samples')!r} is not a number") from None
    if hop_samples <= 0:
        raise BundleError(f"{path}: bundle hop_samples must be positive, not {hop_samples}")
    provenance = _json_field(metadata, "provenance", path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            state = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise BundleError(f"{path}: weights are unreadable, truncated or corrupt ({exc})") from None
    if _weights_digest(state) != metadata.get("weights_sha256"):
        raise BundleError(f"{path}: weights are corrupt (checksum mismatch)")
    state = {name: t.float() if t.is_floating_point() else t for name, t in state.items()}
    return Bundle(
        path=path,
        format_version=int(metadata["format_version"]),
        config=config,
        labels=labels,
        hop_samples=hop_samples,
        provenance=provenance if isinstance(provenance, dict) else {"value": provenance},
        state_dict=state,
        weights_sha256=metadata["weights_sha256"],
    )
