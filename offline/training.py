"""Training: three stages over stratified folds, resumable, single- or multi-process.

The recipe of the workshop paper (section 2.5): Adam with a fixed learning rate of 1e-3, batches
of 32, at most 300 epochs, early stopping when the validation loss has not improved for 35
epochs, categorical cross-entropy weighted by inverse class frequency (with soft targets for
mixed examples). Stage ``audio`` trains cnn-audio and stage ``spec`` trains cnn-spec from scratch;
stage ``comb`` moves the best weights of both (same fold) into cnn-comb, freezes them and trains
only the new dense head (with ``train.comb_extractor_lr``, it fine-tunes them too, at their own
rate). The weights of the epoch with the lowest validation loss are the fold's model
(``best.pt``).

Every epoch ends with an atomic ``last.pt`` holding the model, optimizer, gradient scaler,
epoch, early-stopping state, RNG states and the metrics history, so a killed run continues where
it stopped (run the same command again). Examples are a pure function of
``(seed, epoch, clip)``, so a resumed run sees the same data as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from offline.augment import Augmenter
from offline.checkpoint import (
    atomic_write_bytes,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from offline.config import ExperimentConfig, resolved_dict, save_resolved
from offline.distributed import DistributedContext, init_distributed
from offline.folds import assign_folds
from offline.head_features import (
    STD_FLOOR,
    HeadOnFeatures,
    cached_features,
    first_dense_index,
    folded_state_dict,
    shuffled_batches,
    unfold_standardisation_,
)
from offline.metrics import mean_average_precision_at_k, top_k
from offline.preprocess import CachedClip, load_index
from offline.run_layout import RunLayout
from rtag.bundle import read_bundle
from rtag.config import ModelConfig, from_dict
from rtag.networks import CnnAudio, CnnComb, CnnSpec, TaggerNetwork, build_network

__all__ = [
    "CachedAudio",
    "EpochSampler",
    "FoldResult",
    "autocast_for",
    "TrainingSet",
    "ValidationSet",
    "class_weights",
    "load_stage_network",
    "soft_cross_entropy",
    "train_experiment",
    "train_stage",
    "training_clips",
]

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_map3", "best_val_loss", "epochs_since_best", "seconds")
VALIDATION_SEED_OFFSET = 1_000_003  # keeps validation crops apart from every training epoch's seeds


@dataclasses.dataclass(frozen=True)
class FoldResult:
    """Outcome of one stage on one fold.

    Attributes:
        stage, fold: which model.
        epochs: epochs trained so far in total.
        best_epoch: epoch of the lowest validation loss.
        best_val_loss, best_val_map3: validation metrics of that epoch.
        stopped_early: true when the patience ran out.
    """

    stage: str
    fold: int
    epochs: int
    best_epoch: int
    best_val_loss: float
    best_val_map3: float
    stopped_early: bool


class CachedAudio:
    """Loads clip ``i`` from the prepare cache as a memory map (picklable for loader workers)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __call__(self, index: int) -> np.ndarray:
        return np.load(self.paths[index], mmap_mode="r")


class TrainingSet(Dataset):
    """Augmented training examples ``(audio[window], target[C])``; call :meth:`set_epoch` each epoch.

    Args:
        augmenter: builds the examples.
        indices: clip indices (into the augmenter's clips) of this fold's training part.
        seed: base seed; example ``i`` of epoch ``e`` uses the generator seeded ``(seed, e, clip)``.
    """

    def __init__(self, augmenter: Augmenter, indices: Sequence[int], seed: int) -> None:
        self.augmenter = augmenter
        self.indices = np.asarray(indices, dtype=np.int64)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws the following items use."""
        self.epoch = epoch

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        clip = int(self.indices[item])
        rng = np.random.default_rng((self.seed, self.epoch, clip))
        audio, target = self.augmenter.example(clip, rng)
        return torch.from_numpy(audio), torch.from_numpy(target)


class ValidationSet(Dataset):
    """Validation inputs: one fixed crop or padding per clip (the same in every epoch), one-hot
    targets, no shift or mixing."""

    def __init__(self, augmenter: Augmenter, indices: Sequence[int], seed: int) -> None:
        self.augmenter = augmenter
        self.indices = np.asarray(indices, dtype=np.int64)
        self.seed = seed

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        clip = int(self.indices[item])
        rng = np.random.default_rng((self.seed, VALIDATION_SEED_OFFSET, clip))
        audio = self.augmenter.validation_window(clip, rng)
        target = np.zeros(self.augmenter.num_classes, dtype=np.float32)
        target[self.augmenter.class_ids[clip]] = 1.0
        return torch.from_numpy(audio), torch.from_numpy(target)


class EpochSampler(Sampler[int]):
    """Positions into a :class:`TrainingSet` for one epoch, shuffled and shared out between the
    processes of a distributed job (each takes every ``world_size``-th, the count made even).

    Args:
        class_ids: class of every position of the training set.
        max_clips_per_class: at most this many positions of each class per epoch, drawn afresh
            each epoch (``None``: every position).
        seed: base seed; epoch ``e`` uses the generator seeded ``(seed, e)``.
        rank, world_size: this process's place in the job.
    """

    def __init__(self, class_ids: Sequence[int], max_clips_per_class: int | None, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.class_ids = np.asarray(class_ids, dtype=np.int64)
        self.max_clips_per_class = max_clips_per_class
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        total = int(epoch_class_counts(self.class_ids, max_clips_per_class).sum())
        self.per_process = total // world_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw the next iteration yields."""
        self.epoch = epoch

    def positions(self) -> np.ndarray:
        """All positions drawn for the current epoch, shuffled (before sharing out)."""
        rng = np.random.default_rng((self.seed, self.epoch))
        chosen = []
        for class_id in np.unique(self.class_ids):
            members = np.flatnonzero(self.class_ids == class_id)
            cap = self.max_clips_per_class
            chosen.append(members if cap is None or members.size <= cap else rng.choice(members, cap, replace=False))
        drawn = np.concatenate(chosen)
        rng.shuffle(drawn)
        return drawn[: self.per_process * self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.positions()[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.per_process


def epoch_class_counts(class_ids: Sequence[int], max_clips_per_class: int | None,
                       num_classes: int | None = None) -> np.ndarray:
    """Clips of each class seen per epoch: the class's count, capped at ``max_clips_per_class``."""
    counts = np.bincount(np.asarray(class_ids, dtype=np.int64), minlength=num_classes or 0)
    return counts if max_clips_per_class is None else np.minimum(counts, max_clips_per_class)


def class_weights(class_ids: Sequence[int], num_classes: int, max_clips_per_class: int | None = None) -> torch.Tensor:
    """Inverse-frequency weights ``N / (C * n_c)`` (mean 1 over a balanced set) of the clips an
    epoch sees (``n_c`` capped at ``max_clips_per_class``); a class absent from ``class_ids``
    gets weight 1."""
    counts = epoch_class_counts(class_ids, max_clips_per_class, num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of ``-sum_c w_c * t_c * log softmax(logits)_c``.

    With one-hot targets this is Keras' categorical cross-entropy with ``class_weight``; with the
    soft targets of different-class mixing each class's share is weighted by its own weight.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)
    per_class = targets * log_probs
    if weights is not None:
        per_class = per_class * weights
    return -per_class.sum(dim=-1).mean()


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of ``precision``: none (fp32), bf16 on any device, fp16 on CUDA only."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type != "cuda":
        raise ValueError("train.precision 'fp16' needs CUDA; use 'bf16' on the CPU")
    return torch.autocast("cuda", dtype=torch.float16)


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU computes bf16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag), or
    ``None`` where ``cpuinfo`` cannot be read (not Linux)."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _warn_on_emulated_bf16(device: torch.device, precision: str) -> None:
    if precision == "bf16" and device.type == "cpu" and cpu_has_native_bf16() is False:
        log.warning(
            "train.precision bf16 on a CPU without native bf16 (no avx512_bf16 or amx_bf16): autocast "
            "emulates it, several times slower than fp32 (cnn-audio: about 68 s a step against 9 s on "
            "two AMD EPYC cores); use --set train.precision=fp32"
        )


def _stage_config(cfg: ExperimentConfig, stage: str, num_classes: int) -> ModelConfig:
    return dataclasses.replace(cfg.model, kind=stage, num_classes=num_classes)


def _stage_experiment(cfg: ExperimentConfig, stage: str, num_classes: int) -> ExperimentConfig:
    return dataclasses.replace(cfg, model=_stage_config(cfg, stage, num_classes))


def load_stage_network(layout: RunLayout, stage: str, fold: int) -> tuple[TaggerNetwork, dict[str, Any]]:
    """The best network of ``stage`` on ``fold`` (eval mode, CPU) and its checkpoint dict.

    Raises:
        FileNotFoundError: if that stage and fold have not been trained (names the file).
    """
    checkpoint = load_checkpoint(layout.best_checkpoint(stage, fold))
    model_cfg = from_dict(ModelConfig, checkpoint["config"]["model"], source=str(layout.best_checkpoint(stage, fold)))
    network = build_network(model_cfg)
    network.load_state_dict(checkpoint["model"])
    return network.eval(), checkpoint


def _initial_network(cfg: ExperimentConfig, layout: RunLayout, stage: str, fold: int,
                     labels: Sequence[str]) -> tuple[TaggerNetwork, bool]:
    """The network a stage starts from, and whether its head's first dense layer was taken from
    ``train.init_from`` (that layer then expects the bundle's raw features)."""
    model_cfg = _stage_config(cfg, stage, len(labels))
    torch.manual_seed(cfg.train.seed * 1000 + fold * 10 + ("audio", "spec", "comb").index(stage))
    start = _warm_start_network(cfg.train.init_from, model_cfg) if cfg.train.init_from else None
    if stage != "comb":
        network = build_network(model_cfg)
        if start is not None and isinstance(network, (CnnAudio, CnnSpec)):
            source = start.network.audio_extractor if isinstance(network, CnnAudio) else start.network.spec_extractor
            network.extractor.load_state_dict(source.state_dict())
        return network, False
    if cfg.train.comb_extractors == "init_from" and start is not None:
        comb = CnnComb(model_cfg)
        comb.audio_extractor.load_state_dict(start.network.audio_extractor.state_dict())
        comb.spec_extractor.load_state_dict(start.network.spec_extractor.state_dict())
    else:
        audio, _ = load_stage_network(layout, "audio", fold)
        spec, _ = load_stage_network(layout, "spec", fold)
        if not isinstance(audio, CnnAudio) or not isinstance(spec, CnnSpec):
            raise ValueError(f"{layout.root}: fold {fold} audio/spec checkpoints hold the wrong network kinds")
        comb = CnnComb.from_branches(audio, spec, model_cfg)
    warm_head = start is not None and _warm_start_head(comb, start, labels, cfg.augment.negative_label)
    if cfg.train.comb_extractor_lr is None:
        comb.freeze_features()
    return comb, warm_head


def _parameter_groups(network: TaggerNetwork, cfg: ExperimentConfig) -> list[dict[str, Any]]:
    """The optimizer's parameter groups, each with its ``base_lr``: one group at ``train.lr``,
    or, for a cnn-comb whose extractors are fine-tuned, its extractors at
    ``train.comb_extractor_lr`` and its head at ``train.lr``."""
    trainable = [p for p in network.parameters() if p.requires_grad]
    if not isinstance(network, CnnComb) or cfg.train.comb_extractor_lr is None:
        return [{"params": trainable, "base_lr": cfg.train.lr}]
    extractors = [*network.audio_extractor.parameters(), *network.spec_extractor.parameters()]
    chosen = {id(p) for p in extractors}
    return [{"params": extractors, "base_lr": cfg.train.comb_extractor_lr},
            {"params": [p for p in trainable if id(p) not in chosen], "base_lr": cfg.train.lr}]


@dataclasses.dataclass(frozen=True)
class _WarmStart:
    """The cnn-comb of a ``train.init_from`` bundle, its labels and the ``_other`` logit offset
    its export folded into the output bias (``predict.negative_logit_offset``)."""

    network: CnnComb
    labels: tuple[str, ...]
    negative_logit_offset: float


def _warm_start_network(path: str, model_cfg: ModelConfig) -> _WarmStart:
    """The cnn-comb of bundle ``path``, checked against ``model_cfg``'s extractor settings.

    Raises:
        ValueError: if the bundle is not a cnn-comb or was built with other extractor settings
            (names the file and the setting).
    """
    bundle = read_bundle(path)
    network = bundle.build_network()
    if not isinstance(network, CnnComb):
        raise ValueError(f"train.init_from: {path} holds a cnn-{bundle.config.kind}, not a cnn-comb")
    for key in ("audio", "spec", "mel", "spec_frames", "window_samples", "sample_rate_hz", "peak_norm_floor"):
        if getattr(bundle.config, key) != getattr(model_cfg, key):
            raise ValueError(f"train.init_from: {path} was built with {key}={getattr(bundle.config, key)!r}, "
                             f"this experiment has {getattr(model_cfg, key)!r}")
    log.info("warm start from %s", path)
    offset = float(bundle.provenance.get("negative_logit_offset") or 0.0)
    return _WarmStart(network, bundle.labels, offset)


def _warm_start_head(comb: CnnComb, start: _WarmStart, labels: Sequence[str], negative_label: str) -> bool:
    """Copy ``start``'s head into ``comb``: the hidden layers when their shapes match, the output
    layer too when the labels are the same, less the ``_other`` offset the bundle's export added
    (the run's own export adds its own). Returns whether the first dense layer was copied."""
    output_layer = str(len(comb.head) - 1)
    same_labels = tuple(labels) == start.labels
    wanted = comb.head.state_dict()
    copied = {name: tensor.clone() for name, tensor in start.network.head.state_dict().items()
              if name in wanted and wanted[name].shape == tensor.shape
              and (same_labels or name.split(".", 1)[0] != output_layer)}
    output_bias = f"{output_layer}.bias"
    if output_bias in copied and negative_label in labels:
        copied[output_bias][list(labels).index(negative_label)] -= start.negative_logit_offset
    wanted.update(copied)
    comb.head.load_state_dict(wanted)
    return f"{first_dense_index(comb.head)}.weight" in copied


def _agreed_elapsed_s(ctx: DistributedContext, since: float) -> float:
    """Seconds since ``since``, averaged over the processes of a distributed job so that all of
    them stop after the same epoch."""
    return ctx.all_reduce_sum([time.perf_counter() - since])[0] / ctx.world_size


def _write_metrics(fold_dir: Path, history: Sequence[dict[str, float]]) -> None:
    jsonl = "".join(json.dumps(row) + "\n" for row in history)
    atomic_write_bytes(fold_dir / "metrics.jsonl", jsonl.encode("utf-8"))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(fold_dir / "metrics.csv", text.getvalue().encode("utf-8"))


def _check_resumable(checkpoint: dict[str, Any], cfg: ExperimentConfig, path: Path) -> None:
    saved = checkpoint["config"]
    current = resolved_dict(cfg)
    for section in ("model", "augment", "data"):
        for key, value in current[section].items():
            if (section, key) != ("data", "root") and saved[section].get(key) != value:
                raise ValueError(
                    f"{path}: cannot resume, '{section}.{key}' was {saved[section].get(key)!r} and is now "
                    f"{value!r}; use another run_dir or restore the setting"
                )


def _batches(loader: DataLoader, progress: bool, desc: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    yield from tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress)


def _scores(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
            labels: Sequence[str]) -> tuple[float, float, float]:
    """Summed loss, summed AP@3 and count of one batch."""
    loss = float(soft_cross_entropy(logits, target, weights)) * logits.shape[0]
    predicted = top_k(logits.float().cpu().numpy(), labels, 3)
    actual = [labels[i] for i in target.argmax(dim=1).cpu().tolist()]
    return loss, mean_average_precision_at_k(predicted, actual) * logits.shape[0], float(logits.shape[0])


def _smoothed(target: torch.Tensor, smoothing: float) -> torch.Tensor:
    return target if smoothing == 0 else target * (1.0 - smoothing) + smoothing / target.shape[1]


def _optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


class _AudioEpochs:
    """Epochs of the papers' way: augmented audio through the whole network at every step."""

    def __init__(self, cfg: ExperimentConfig, network: TaggerNetwork, ctx: DistributedContext, train_set: TrainingSet,
                 val_set: ValidationSet, sampler: EpochSampler, labels: Sequence[str], stage: str, fold: int) -> None:
        self.cfg, self.network, self.ctx, self.labels = cfg, network, ctx, labels
        self.train_set, self.sampler, self.desc = train_set, sampler, f"{stage} fold {fold}"
        loader_args: dict[str, Any] = {"num_workers": cfg.train.num_workers, "pin_memory": ctx.device.type == "cuda"}
        drop_last = len(sampler) > cfg.train.batch_size
        self.train_loader = DataLoader(train_set, batch_size=cfg.train.batch_size, sampler=sampler, drop_last=drop_last,
                                       **loader_args)
        self.val_loader = DataLoader(val_set, batch_size=cfg.train.batch_size, shuffle=False, **loader_args)
        self.model: nn.Module = network
        if ctx.is_distributed:
            self.model = DistributedDataParallel(network, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

    def train_epoch(self, epoch: int, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    weights: torch.Tensor) -> tuple[float, float]:
        """Summed training loss and example count of ``epoch`` (this process's share)."""
        self.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)
        self.model.train()
        loss_sum, seen = 0.0, 0.0
        progress = self.cfg.train.progress and self.ctx.is_main
        for audio, target in _batches(self.train_loader, progress, f"{self.desc} epoch {epoch}"):
            audio = audio.to(self.ctx.device, non_blocking=True)
            target = target.to(self.ctx.device, non_blocking=True)
            with autocast_for(self.ctx.device, self.cfg.train.precision):
                logits = self.model(audio)
            loss = soft_cross_entropy(logits, _smoothed(target, self.cfg.train.label_smoothing), weights)
            _optimizer_step(optimizer, scaler, loss)
            loss_sum += float(loss.detach()) * audio.shape[0]
            seen += audio.shape[0]
        return loss_sum, seen

    @torch.no_grad()
    def validate(self, weights: torch.Tensor) -> tuple[float, float, float]:
        """Summed validation loss, summed AP@3 and count (this process's share)."""
        self.network.eval()
        totals = np.zeros(3)
        for audio, target in self.val_loader:
            with autocast_for(self.ctx.device, self.cfg.train.precision):
                logits = self.network(audio.to(self.ctx.device))
            totals += _scores(logits, target.to(self.ctx.device), weights, self.labels)
        return float(totals[0]), float(totals[1]), float(totals[2])

    def best_state(self) -> dict[str, torch.Tensor]:
        """The network's weights as the fold's model stores them."""
        return self.network.state_dict()


class _FeatureEpochs:
    """Epochs of the cnn-comb head on cached features of the frozen extractors
    (``train.head_feature_crops``, :mod:`offline.head_features`)."""

    EVAL_BATCH = 1024

    def __init__(self, cfg: ExperimentConfig, network: CnnComb, ctx: DistributedContext, train_set: TrainingSet,
                 val_set: ValidationSet, labels: Sequence[str], fold_dir: Path, raw_feature_head: bool) -> None:
        """``raw_feature_head``: the head's first layer was warm-started from a bundle and still
        takes raw features; it is rewritten to take the standardised ones."""
        self.cfg, self.network, self.device, self.labels = cfg, network, ctx.device, labels
        train, val = cached_features(cfg, network, fold_dir / "features", train_set, val_set, ctx.device,
                                     lambda: autocast_for(ctx.device, cfg.train.precision))
        self.train_x = torch.from_numpy(train.features).to(ctx.device)
        self.train_t = torch.from_numpy(train.targets).to(ctx.device)
        self.val_x = torch.from_numpy(val.features).to(ctx.device)
        self.val_t = torch.from_numpy(val.targets).to(ctx.device)
        mean, std = self.train_x.mean(dim=0), self.train_x.std(dim=0) + STD_FLOOR
        if raw_feature_head:
            unfold_standardisation_(network.head, mean, std)
        self.trainer = HeadOnFeatures(network.head, mean, std, cfg.train.head_feature_noise,
                                      cfg.train.head_input_dropout, cfg.train.head_dropout).to(ctx.device)
        log.info("comb head on cached features: %d training rows, %d validation rows, %d features",
                 self.train_x.shape[0], self.val_x.shape[0], self.train_x.shape[1])

    @property
    def train_class_ids(self) -> np.ndarray:
        """Class of every cached training row (its largest target)."""
        return self.train_t.argmax(dim=1).cpu().numpy()

    def train_epoch(self, epoch: int, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    weights: torch.Tensor) -> tuple[float, float]:
        """Summed training loss and row count of ``epoch``.

        Dropout and feature noise draw from a generator seeded by (seed, epoch), so a resumed run
        repeats the epochs of an uninterrupted one exactly.
        """
        self.trainer.train()
        loss_sum, seen = 0.0, 0.0
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(int(np.random.SeedSequence((self.cfg.train.seed, epoch)).generate_state(1)[0]))
            for rows in shuffled_batches(self.train_x.shape[0], self.cfg.train.batch_size, self.cfg.train.seed, epoch):
                index = torch.from_numpy(rows).to(self.device)
                target = _smoothed(self.train_t[index], self.cfg.train.label_smoothing)
                loss = soft_cross_entropy(self.trainer(self.train_x[index]), target, weights)
                _optimizer_step(optimizer, scaler, loss)
                loss_sum += float(loss.detach()) * rows.size
                seen += rows.size
        return loss_sum, seen

    @torch.no_grad()
    def validate(self, weights: torch.Tensor) -> tuple[float, float, float]:
        """Summed validation loss, summed AP@3 and count."""
        self.trainer.eval()
        totals = np.zeros(3)
        for start in range(0, self.val_x.shape[0], self.EVAL_BATCH):
            stop = start + self.EVAL_BATCH
            totals += _scores(self.trainer(self.val_x[start:stop]), self.val_t[start:stop], weights, self.labels)
        return float(totals[0]), float(totals[1]), float(totals[2])

    def best_state(self) -> dict[str, torch.Tensor]:
        """The network's weights with the standardisation folded into the head's first layer."""
        return folded_state_dict(self.network, self.trainer.mean, self.trainer.std)


def train_stage(
    cfg: ExperimentConfig,
    stage: str,
    fold: int,
    clips: Sequence[CachedClip],
    labels: Sequence[str],
    folds: np.ndarray,
    ctx: DistributedContext,
) -> FoldResult:
    """Train (or resume, or skip when finished) one stage on one fold.

    Args:
        cfg: the experiment config.
        stage: ``"audio"``, ``"spec"`` or ``"comb"``.
        fold: the validation fold; the other folds train.
        clips: the training clips (in the order of ``folds``).
        labels: class names in output order.
        folds: fold of every clip.
        ctx: the process's place in a distributed job.
    """
    layout = RunLayout(Path(cfg.run_dir))
    stage_cfg = _stage_experiment(cfg, stage, len(labels))
    fold_dir = layout.fold_dir(stage, fold)
    last_path = layout.last_checkpoint(stage, fold)
    label_index = {label: i for i, label in enumerate(labels)}
    class_ids = np.array([label_index[c.label] for c in clips], dtype=np.int64)
    train_idx = np.flatnonzero(folds != fold)
    val_idx = np.flatnonzero(folds == fold)
    if val_idx.size == 0 or train_idx.size == 0:
        raise ValueError(f"fold {fold} leaves no training or no validation clips")
    on_features = stage == "comb" and cfg.train.head_feature_crops is not None
    if on_features and ctx.is_distributed:
        raise ValueError("train.head_feature_crops trains the comb head in one process: run it without torchrun")

    network, warm_head = _initial_network(cfg, layout, stage, fold, labels)
    network = network.to(ctx.device)
    optimizer = torch.optim.AdamW(_parameter_groups(network, cfg), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.precision == "fp16" and not on_features)
    history: list[dict[str, float]] = []
    best_val_loss, best_epoch, best_map3, since_best, start_epoch, stopped = math.inf, 0, 0.0, 0, 0, False

    if last_path.exists():
        state = load_checkpoint(last_path)
        _check_resumable(state, stage_cfg, last_path)
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        history = list(state["history"])
        start_epoch, stopped = int(state["epoch"]), bool(state["stopped_early"])
        best_val_loss, best_epoch = float(state["best_val_loss"]), int(state["best_epoch"])
        best_map3, since_best = float(state["best_val_map3"]), int(state["epochs_since_best"])
        if ctx.is_main:
            log.info("%s fold %d: resuming after epoch %d", stage, fold, start_epoch)
    if stopped or start_epoch >= cfg.train.epochs:
        return FoldResult(stage, fold, start_epoch, best_epoch, best_val_loss, best_map3, stopped)

    if ctx.is_main:
        fold_dir.mkdir(parents=True, exist_ok=True)
        save_resolved(stage_cfg, fold_dir / "config.yaml")
    floor = cfg.model.peak_norm_floor if cfg.model.peak_norm_floor is not None else 1e-3
    negative = label_index.get(cfg.augment.negative_label)
    augmenter = Augmenter(
        CachedAudio([c.cache_path for c in clips]), class_ids, len(labels), cfg.model.window_samples, cfg.augment,
        peak_floor=floor, sample_rate_hz=cfg.model.sample_rate_hz,
        background_indices=train_idx[class_ids[train_idx] == negative] if negative is not None else (),
        negative_class=negative,
    )
    train_set = TrainingSet(augmenter, train_idx, cfg.train.seed)
    val_set = ValidationSet(augmenter, val_idx[ctx.rank :: ctx.world_size], cfg.train.seed)
    runner: _AudioEpochs | _FeatureEpochs
    if on_features:
        assert isinstance(network, CnnComb)
        runner = _FeatureEpochs(stage_cfg, network, ctx, train_set, val_set, labels, fold_dir,
                                raw_feature_head=warm_head and start_epoch == 0)
        weighted_ids, cap = runner.train_class_ids, None
    else:
        sampler = EpochSampler(class_ids[train_idx], cfg.train.max_clips_per_class, cfg.train.seed, ctx.rank, ctx.world_size)
        runner = _AudioEpochs(stage_cfg, network, ctx, train_set, val_set, sampler, labels, stage, fold)
        weighted_ids, cap = class_ids[train_idx], cfg.train.max_clips_per_class
    weights = (
        class_weights(weighted_ids, len(labels), cap) if cfg.train.class_weighted else torch.ones(len(labels))
    ).to(ctx.device)

    stage_started = time.perf_counter()
    for epoch in range(start_epoch + 1, cfg.train.epochs + 1):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cfg.train.learning_rate(epoch, group["base_lr"])
        train_sum, train_seen = ctx.all_reduce_sum(list(runner.train_epoch(epoch, optimizer, scaler, weights)))
        val_sum, ap_sum, val_count = ctx.all_reduce_sum(list(runner.validate(weights)))
        val_loss, val_map3 = val_sum / max(val_count, 1.0), ap_sum / max(val_count, 1.0)
        improved = val_loss < best_val_loss
        if improved:
            best_val_loss, best_epoch, best_map3, since_best = val_loss, epoch, val_map3, 0
        else:
            since_best += 1
        stopped = since_best >= cfg.train.patience_epochs
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_sum / max(train_seen, 1.0),
                "val_loss": val_loss,
                "val_map3": val_map3,
                "best_val_loss": best_val_loss,
                "epochs_since_best": since_best,
                "seconds": time.perf_counter() - started,
            }
        )
        if ctx.is_main:
            resolved = resolved_dict(stage_cfg)
            if improved:
                save_checkpoint(
                    layout.best_checkpoint(stage, fold),
                    {"model": runner.best_state(), "config": resolved, "labels": list(labels), "stage": stage,
                     "fold": fold, "epoch": epoch, "val_loss": val_loss, "val_map3": val_map3},
                )
            _write_metrics(fold_dir, history)
            save_checkpoint(
                last_path,
                {"model": network.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                 "rng": capture_rng_state(), "epoch": epoch, "history": history, "best_val_loss": best_val_loss,
                 "best_epoch": best_epoch, "best_val_map3": best_map3, "epochs_since_best": since_best,
                 "stopped_early": stopped, "config": resolved, "labels": list(labels),
                 "world_size": ctx.world_size},
            )
            tqdm.write(
                f"{stage} fold {fold} epoch {epoch}: train loss {history[-1]['train_loss']:.4f}, "
                f"val loss {val_loss:.4f}, val mAP@3 {val_map3:.4f}{' *' if improved else ''}"
            )
        ctx.barrier()
        if stopped:
            break
        limit_s = cfg.train.stage_time_limit_s
        if limit_s is not None and _agreed_elapsed_s(ctx, stage_started) >= limit_s:
            if ctx.is_main:
                log.info("%s fold %d: stage_time_limit_s %g reached after epoch %d; resumable", stage, fold, limit_s, epoch)
            break
    return FoldResult(stage, fold, history[-1]["epoch"], best_epoch, best_val_loss, best_map3, stopped)


def training_clips(cfg: ExperimentConfig) -> list[CachedClip]:
    """The prepared training clips of ``cfg`` (manually verified ones only if configured)."""
    clips = [c for c in load_index(cfg.data.cache_dir) if c.split == "train" and c.label is not None]
    if cfg.data.verified_only:
        clips = [c for c in clips if c.manually_verified]
    if not clips:
        raise ValueError(f"{cfg.data.cache_dir}: no labelled training clips in the prepared cache")
    return clips


def _write_run_files(layout: RunLayout, cfg: ExperimentConfig, labels: Sequence[str], clips: Sequence[CachedClip], folds: np.ndarray) -> None:
    save_resolved(cfg, layout.config_path)
    atomic_write_bytes(layout.labels_path, json.dumps(list(labels), indent=1).encode("utf-8"))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("clip_id", "label", "fold"))
    writer.writerows((c.clip_id, c.label, int(f)) for c, f in zip(clips, folds))
    atomic_write_bytes(layout.folds_path, text.getvalue().encode("utf-8"))


def train_experiment(cfg: ExperimentConfig) -> list[FoldResult]:
    """Run every configured stage on every configured fold (stage by stage), resuming as needed.

    ``model.num_classes`` is set from the label vocabulary of the prepared training clips.
    Under torchrun the work is shared by all processes; rank 0 writes the files.

    Returns:
        One :class:`FoldResult` per stage and fold.
    """
    ctx = init_distributed(cfg.train.device)
    _warn_on_emulated_bf16(ctx.device, cfg.train.precision)
    try:
        results = _train_all(cfg, ctx)
    except BaseException:
        ctx.close(wait_for_others=False)
        raise
    ctx.close()
    return results


def _train_all(cfg: ExperimentConfig, ctx: DistributedContext) -> list[FoldResult]:
    clips = training_clips(cfg)
    labels = tuple(sorted({c.label for c in clips if c.label is not None}))
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_classes=len(labels)))
    folds = assign_folds([c.label for c in clips], cfg.train.num_folds, cfg.train.seed, [c.fold for c in clips])
    layout = RunLayout(Path(cfg.run_dir))
    if ctx.is_main:
        layout.root.mkdir(parents=True, exist_ok=True)
        if layout.labels_path.exists() and layout.read_labels() != labels:
            raise ValueError(f"{layout.labels_path}: this run was trained on other classes; use another run_dir")
        _write_run_files(layout, cfg, labels, clips, folds)
    ctx.barrier()
    results = []
    for stage in cfg.train.stages:
        for fold in cfg.train.fold_ids:
            results.append(train_stage(cfg, stage, fold, clips, labels, folds, ctx))
    return results
