"""The cnn-comb head trained on cached features of its frozen extractors.

Stage ``comb`` trains only the dense head: the extractors are frozen, so the features of an
example are the same every time it is seen. With ``train.head_feature_crops: K`` they are
computed once, for the examples epochs ``1..K`` of the audio path would draw from every
training clip (same seeds, same augmentation) and for the validation crops, and the head trains
on them for as many epochs as wanted at a tiny fraction of the cost. Features are standardised
by their training mean and deviation; regularisation that the papers' head does not have
(Gaussian feature noise, input dropout, dropout between the dense layers) acts only while
training, so the saved network keeps the architecture of the model config: the standardisation
is folded into the first dense layer.

The cache lives in ``<fold folder>/features/``: one ``train_<k>.npz`` per crop and
``val.npz``, each written atomically, and ``fingerprint.json``, a digest of everything that
decides the features (model, augmentation, data, seed, extractor weights). A killed extraction
resumes at the first missing crop; a changed fingerprint recomputes the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from offline.checkpoint import atomic_write_bytes
from offline.config import ExperimentConfig, resolved_dict
from rtag.networks import CnnComb, cpu_inference_form

__all__ = [
    "FeatureSet",
    "HeadOnFeatures",
    "STD_FLOOR",
    "cached_features",
    "first_dense_index",
    "folded_state_dict",
    "shuffled_batches",
    "unfold_standardisation_",
]

log = logging.getLogger(__name__)

STD_FLOOR = 1e-2
"""Added to every feature's training deviation: dead (always zero) features stay zero and
near-constant ones are not blown up."""


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """Cached head inputs: features [N, F] float32 and targets [N, C] float32 (soft for mixtures)."""

    features: np.ndarray
    targets: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[FeatureSet]) -> FeatureSet:
        """One set holding the rows of ``parts`` in order."""
        return cls(np.concatenate([p.features for p in parts]), np.concatenate([p.targets for p in parts]))

    def save(self, path: Path) -> None:
        """Write the set to ``path`` (``.npz``) atomically."""
        buffer = io.BytesIO()
        np.savez(buffer, features=self.features, targets=self.targets)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> FeatureSet:
        """The set saved at ``path``."""
        with np.load(path) as data:
            return cls(data["features"], data["targets"])


def _fingerprint(cfg: ExperimentConfig, network: CnnComb) -> str:
    resolved = resolved_dict(cfg)
    data = {key: value for key, value in resolved["data"].items() if key != "root"}
    digest = hashlib.sha256()
    digest.update(json.dumps({"model": resolved["model"], "augment": resolved["augment"], "data": data,
                              "seed": cfg.train.seed}, sort_keys=True).encode("utf-8"))
    for extractor in (network.audio_extractor, network.spec_extractor):
        for name, tensor in extractor.state_dict().items():
            digest.update(name.encode("utf-8"))
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


Autocast = Callable[[], contextlib.AbstractContextManager[Any]]


@torch.inference_mode()
def _extract(network: nn.Module, dataset: Dataset, cfg: ExperimentConfig, device: torch.device, autocast: Autocast,
             desc: str) -> FeatureSet:
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=False, num_workers=cfg.train.num_workers)
    features, targets = [], []
    for audio, target in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not cfg.train.progress):
        with autocast():
            batch = network.features(audio.to(device))
        features.append(batch.float().cpu().numpy())
        targets.append(target.numpy().astype(np.float32))
    return FeatureSet(np.concatenate(features), np.concatenate(targets))


def cached_features(cfg: ExperimentConfig, network: CnnComb, cache_dir: Path, train_set: Any, val_set: Dataset,
                    device: torch.device, autocast: Autocast) -> tuple[FeatureSet, FeatureSet]:
    """The training features (``train.head_feature_crops`` crops of every clip, crop by crop)
    and the validation features, from ``cache_dir`` where they are current, else computed and
    saved there.

    Args:
        cfg: the stage's experiment config.
        network: the cnn-comb whose (frozen) extractors compute the features.
        cache_dir: the fold's ``features/`` folder.
        train_set: a :class:`offline.training.TrainingSet`; crop ``k`` is its epoch ``k``.
        val_set: the validation inputs.
        device: where the extractors run; on a CPU they run in the network's CPU form
            (:func:`rtag.networks.cpu_inference_form`: the same features within float rounding,
            about 1.35x faster in fp32).
        autocast: the context of the configured precision.
    """
    crops = cfg.train.head_feature_crops
    if crops is None:
        raise ValueError("train.head_feature_crops is not set")
    fingerprint = _fingerprint(cfg, network)
    fingerprint_path = cache_dir / "fingerprint.json"
    if fingerprint_path.exists() and json.loads(fingerprint_path.read_text(encoding="utf-8")).get("digest") != fingerprint:
        log.info("%s: the model, augmentation, data or extractors changed; recomputing the features", cache_dir)
        for stale in cache_dir.glob("*.npz"):
            stale.unlink()
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(fingerprint_path, json.dumps({"digest": fingerprint}).encode("utf-8"))
    extractor = cpu_inference_form(network) if device.type == "cpu" else network.eval()
    parts = []
    for crop in range(1, crops + 1):
        path = cache_dir / f"train_{crop}.npz"
        if not path.exists():
            train_set.set_epoch(crop)
            _extract(extractor, train_set, cfg, device, autocast, f"features of crop {crop}/{crops}").save(path)
        parts.append(FeatureSet.load(path))
    val_path = cache_dir / "val.npz"
    if not val_path.exists():
        _extract(extractor, val_set, cfg, device, autocast, "validation features").save(val_path)
    return FeatureSet.concatenate(parts), FeatureSet.load(val_path)


class HeadOnFeatures(nn.Module):
    """The head as trained on cached features: standardisation, Gaussian feature noise, input
    dropout, and dropout before every later dense layer. It holds the head's own modules, so
    training it trains the head.

    Args:
        head: the cnn-comb's dense head (Linear, ReLU, [BatchNorm] ... Linear).
        mean, std: per-feature training mean and deviation (``STD_FLOOR`` already added).
        feature_noise: noise deviation in standardised units.
        input_dropout, dropout: dropout rates.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, head: nn.Sequential, mean: torch.Tensor, std: torch.Tensor, feature_noise: float,
                 input_dropout: float, dropout: float) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.feature_noise = feature_noise
        layers: list[nn.Module] = []
        for module in head:
            if isinstance(module, nn.Linear):
                layers.append(nn.Dropout(dropout if layers else input_dropout))
            layers.append(module)
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] for raw (unstandardised) features [B, F]."""
        standardized = (features - self.mean) / self.std
        if self.training and self.feature_noise > 0:
            standardized = standardized + self.feature_noise * torch.randn_like(standardized)
        return self.layers(standardized)


def first_dense_index(head: nn.Sequential) -> int:
    """Position of the first dense layer in ``head`` (the layer that takes the features)."""
    return next(i for i, module in enumerate(head) if isinstance(module, nn.Linear))


def folded_state_dict(network: CnnComb, mean: torch.Tensor, std: torch.Tensor) -> dict[str, torch.Tensor]:
    """``network``'s state dict with the standardisation ``(x - mean) / std`` folded into the
    first dense layer of its head, so the network takes raw features as it does at run time."""
    state = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    first = first_dense_index(network.head)
    weight, bias = state[f"head.{first}.weight"], state[f"head.{first}.bias"]
    folded = weight / std.to(weight)[None, :]
    state[f"head.{first}.weight"] = folded
    state[f"head.{first}.bias"] = bias - folded @ mean.to(weight)
    return state


def unfold_standardisation_(head: nn.Sequential, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Rewrite ``head``'s first dense layer, in place, so that on standardised features
    ``(x - mean) / std`` it computes what it computed on raw features ``x``: the inverse of
    :func:`folded_state_dict`, for a head warm-started from a bundle (every bundle's head takes raw
    features) before it trains on standardised ones."""
    first = head[first_dense_index(head)]
    with torch.no_grad():
        weight = first.weight
        first.bias += weight @ mean.to(weight)
        weight *= std.to(weight)[None, :]


def shuffled_batches(rows: int, batch_size: int, seed: int, epoch: int) -> Iterator[np.ndarray]:
    """Row indices of one epoch in batches, shuffled by the generator seeded ``(seed, epoch)``;
    a last batch of one row is dropped (BatchNorm needs two)."""
    order = np.random.default_rng((seed, epoch)).permutation(rows)
    for start in range(0, rows, batch_size):
        batch = order[start : start + batch_size]
        if batch.size > 1:
            yield batch
