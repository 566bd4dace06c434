"""``predict``: the papers' test-time procedure over the fold models of one stage.

Every test clip (trimmed, from the prepare cache) is cut into crops every ``step_samples``
(padded at positions every ``step_samples`` when shorter than the window) by
:func:`rtag.tta.tta_inputs`; each fold model's probabilities over those inputs are combined by
their geometric mean (:meth:`rtag.model.TaggerModel.tag_clip`; every input alike as in the papers,
or weighed by its energy with ``predict.weighting: energy``), and the fold models' results are
combined by a second geometric mean. The top three classes are the prediction.

``zero_branch`` runs cnn-comb with its raw-audio (``"audio"``) or spectrogram (``"spec"``) input
set to zero, the ablation of the workshop paper's Figure 2.

Output in ``<run_dir>/predictions/``: ``<name>.csv`` (``clip_id,label,usage,pred1,pred2,pred3``;
``label`` empty for unlabelled clips) and ``<name>.npy`` (float32 probabilities [clips, classes]
in the row order of the CSV and the class order of ``labels.json``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from offline.checkpoint import atomic_write_bytes
from offline.config import ConfigError, ExperimentConfig, PredictConfig
from offline.metrics import top_k
from offline.preprocess import CachedClip, load_index
from offline.run_layout import RunLayout
from offline.training import load_stage_network, training_clips
from rtag.config import ModelConfig, from_dict
from rtag.model import TaggerModel
from rtag.networks import CnnComb, build_network
from rtag.tta import geometric_mean

__all__ = [
    "ZeroedInput",
    "apply_negative_logit_offset",
    "predict_stage",
    "predict_validation",
    "prediction_name",
    "prepared_test_clips",
    "write_predictions",
]


class ZeroedInput(nn.Module):
    """cnn-comb with one input set to zero (``"audio"`` or ``"spec"``), for the Figure 2 ablation."""

    def __init__(self, network: CnnComb, zero_branch: str) -> None:
        super().__init__()
        if zero_branch not in ("audio", "spec"):
            raise ValueError(f"zero_branch must be 'audio' or 'spec', not {zero_branch!r}")
        self.network = network
        self.zero_branch = zero_branch

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.network(audio, zero_branch=self.zero_branch)


def apply_negative_logit_offset(network: nn.Module, labels: Sequence[str], cfg: ExperimentConfig) -> None:
    """Add ``cfg.predict.negative_logit_offset`` to the output bias of ``cfg.augment.negative_label``
    in ``network``'s last dense layer, in place; nothing when the offset is 0.

    Raises:
        ConfigError: if the offset is set and the negative label is not among ``labels``.
    """
    offset = cfg.predict.negative_logit_offset
    if offset == 0.0:
        return
    label = cfg.augment.negative_label
    if label not in labels:
        raise ConfigError(f"predict.negative_logit_offset: the model has no {label!r} output "
                          "(augment.negative_label) to offset")
    last = [module for module in network.modules() if isinstance(module, nn.Linear)][-1]
    with torch.no_grad():
        last.bias[list(labels).index(label)] += offset


def apply_front_end(network: nn.Module, model_cfg: ModelConfig, cfg: ExperimentConfig) -> tuple[nn.Module, ModelConfig]:
    """``network`` and its config with the rumble filter of ``cfg.predict.highpass_hz`` (the same
    weights in a network built for that front end); both unchanged when it is ``None``."""
    if cfg.predict.highpass_hz is None:
        return network, model_cfg
    model_cfg = dataclasses.replace(model_cfg, highpass_hz=cfg.predict.highpass_hz)
    filtered = build_network(model_cfg)
    filtered.load_state_dict(network.state_dict())
    return filtered.eval(), model_cfg


def prediction_name(stage: str, zero_branch: str | None = None) -> str:
    """File stem of a prediction set: ``comb``, or ``comb_zero-audio`` for an ablation."""
    return stage if zero_branch is None else f"{stage}_zero-{zero_branch}"


def prepared_test_clips(cfg: ExperimentConfig) -> list[CachedClip]:
    """The prepared test clips of ``cfg``.

    Raises:
        ValueError: if the prepared cache holds no test clips.
    """
    clips = [c for c in load_index(cfg.data.cache_dir) if c.split == "test"]
    if not clips:
        raise ValueError(f"{cfg.data.cache_dir}: the prepared cache holds no test clips")
    return clips


def predict_stage(
    cfg: ExperimentConfig,
    stage: str,
    zero_branch: str | None = None,
    folds: Sequence[int] | None = None,
    step_samples: int | None = None,
    device: str = "auto",
    progress: bool = True,
    name: str | None = None,
) -> Path:
    """Predict every test clip with the fold models of ``stage`` and write the prediction set.

    Args:
        cfg: the experiment config (its ``run_dir`` must hold trained models).
        stage: ``"audio"``, ``"spec"`` or ``"comb"``.
        zero_branch: ``None`` (default), or ``"audio"``/``"spec"`` for the zeroed-input ablation
            (comb only).
        folds: fold models to combine (default ``cfg.predict.folds``, else all trained folds).
        step_samples: TTA step (default ``cfg.predict.step_samples``: 5120; 51200 for the
            efficient mode).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (default ``"auto"``).
        progress: show a tqdm progress bar (default true).
        name: file stem of the prediction set (default :func:`prediction_name`), e.g.
            ``comb_efficient`` for a second set with other folds or step.

    Returns:
        The path of the written ``<name>.csv``.

    Raises:
        FileNotFoundError: if a requested fold model does not exist.
        ValueError: for ``zero_branch`` with a stage other than comb.
    """
    layout = RunLayout(Path(cfg.run_dir))
    labels = layout.read_labels()
    if zero_branch is not None and stage != "comb":
        raise ValueError(f"the zeroed-input ablation needs the comb stage, not {stage!r}")
    fold_ids = list(folds if folds is not None else (cfg.predict.folds or layout.trained_folds(stage)))
    if not fold_ids:
        raise FileNotFoundError(f"{layout.root / stage}: no trained {stage} models; run train first")
    step = step_samples or cfg.predict.step_samples
    clips = prepared_test_clips(cfg)
    per_fold = np.stack(
        [
            _tag_clips(_fold_model(layout, cfg, stage, fold, zero_branch, labels, device), clips, step, cfg.predict,
                       f"predict {prediction_name(stage, zero_branch)} fold {fold}", progress)
            for fold in fold_ids
        ]
    )
    probs = geometric_mean(per_fold, axis=0)
    return write_predictions(layout, name or prediction_name(stage, zero_branch), clips, labels, probs)


def _fold_model(layout: RunLayout, cfg: ExperimentConfig, stage: str, fold: int, zero_branch: str | None,
                labels: Sequence[str], device: str) -> TaggerModel:
    network, checkpoint = load_stage_network(layout, stage, fold)
    apply_negative_logit_offset(network, labels, cfg)
    network, model_cfg = apply_front_end(network, from_dict(ModelConfig, checkpoint["config"]["model"]), cfg)
    if zero_branch is not None:
        assert isinstance(network, CnnComb)
        network = ZeroedInput(network, zero_branch)
    return TaggerModel.from_network(network, model_cfg, labels, device=device)  # type: ignore[arg-type]


def _tag_clips(model: TaggerModel, clips: Sequence[CachedClip], step: int, cfg: PredictConfig, desc: str,
               progress: bool) -> np.ndarray:
    return np.stack(
        [
            model.tag_clip(clip.load(), step_samples=step, batch_size=cfg.batch_size, weighting=cfg.weighting)
            for clip in tqdm(clips, desc=desc, unit="clip", disable=not progress)
        ]
    )


def predict_validation(
    cfg: ExperimentConfig,
    stage: str,
    step_samples: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Out-of-fold predictions: every training clip predicted by the fold model that validated on it.

    The test-time procedure is the same as in :func:`predict_stage`. The set is written as
    ``<stage>_val`` with the fold in the ``usage`` column (``fold0``, ...); ``evaluate`` reports
    its mAP@3 per fold with minimum, maximum and average (the technical report's Table 1).

    Raises:
        FileNotFoundError: if the run has no trained models of ``stage``.
    """
    layout = RunLayout(Path(cfg.run_dir))
    labels = layout.read_labels()
    fold_ids = layout.trained_folds(stage)
    if not fold_ids:
        raise FileNotFoundError(f"{layout.root / stage}: no trained {stage} models; run train first")
    with open(layout.folds_path, newline="", encoding="utf-8") as handle:
        fold_of = {row["clip_id"]: int(row["fold"]) for row in csv.DictReader(handle)}
    by_id = {c.clip_id: c for c in training_clips(cfg)}
    step = step_samples or cfg.predict.step_samples
    clips: list[CachedClip] = []
    parts: list[np.ndarray] = []
    for fold in fold_ids:
        members = [by_id[clip_id] for clip_id, f in fold_of.items() if f == fold and clip_id in by_id]
        model = _fold_model(layout, cfg, stage, fold, None, labels, device)
        parts.append(_tag_clips(model, members, step, cfg.predict, f"validate {stage} fold {fold}", progress))
        clips += [dataclasses.replace(c, usage=f"fold{fold}") for c in members]
    return write_predictions(layout, f"{stage}_val", clips, labels, np.concatenate(parts))


def write_predictions(layout: RunLayout, name: str, clips: Sequence[CachedClip], labels: Sequence[str], probs: np.ndarray) -> Path:
    """Write ``<name>.npy`` (probabilities) and ``<name>.csv`` (top 3) into the run's predictions."""
    buffer = io.BytesIO()
    np.save(buffer, probs.astype(np.float32))
    atomic_write_bytes(layout.predictions_dir / f"{name}.npy", buffer.getvalue())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("clip_id", "label", "usage", "pred1", "pred2", "pred3"))
    for clip, top in zip(clips, top_k(probs, labels, 3)):
        writer.writerow((clip.clip_id, clip.label or "", clip.usage or "", *top, *[""] * (3 - len(top))))
    return atomic_write_bytes(layout.predictions_dir / f"{name}.csv", text.getvalue().encode("utf-8"))
