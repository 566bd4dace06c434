"""Experiment configuration of the offline pipeline: data, augmentation, training, prediction.

One YAML file in ``configs/train/`` describes one experiment (for example the 2 s models of
Table 3). Its ``model_file`` key names a model config in ``configs/model/`` (relative to the
YAML file); keys under ``model:`` in the experiment file override that model config. Every key
can be overridden from the command line with ``--set train.epochs=3``. The resolved config
(``model_file`` merged in, overrides applied) is what :func:`resolved_dict` returns and what is
written beside every checkpoint, so a run directory always says exactly what produced it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from offline.checkpoint import atomic_write_bytes
from rtag.config import ConfigError, ModelConfig, apply_overrides, from_dict, read_yaml_mapping, to_dict
from rtag.tta import WEIGHTINGS

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "ExperimentConfig",
    "PredictConfig",
    "TrainConfig",
    "STAGES",
    "load_experiment",
    "resolved_dict",
    "save_resolved",
]

STAGES: tuple[str, ...] = ("audio", "spec", "comb")
COMB_EXTRACTORS: tuple[str, ...] = ("branches", "init_from")
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
LAYOUTS: tuple[str, ...] = ("fsdkaggle2018", "kaggle", "manifest")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the clips are and how they are prepared.

    Attributes:
        layout: ``"fsdkaggle2018"`` (the Zenodo release: ``FSDKaggle2018.meta/`` and
            ``FSDKaggle2018.audio_{train,test}/``), ``"kaggle"`` (``train.csv``, ``audio_train/``,
            optional ``sample_submission.csv`` and ``audio_test/``) or ``"manifest"`` (a CSV with
            ``path,label[,fold][,split][,usage]``).
        root: the dataset folder, or for ``"manifest"`` the CSV file (default ``"data/FSDKaggle2018"``).
        cache_dir: where ``prepare`` writes trimmed audio and the clip index (default
            ``"runs/cache/FSDKaggle2018"``).
        trim_top_db: leading and trailing audio quieter than this many dB below the clip's peak
            is cut (default 40, the papers' value); ``None`` keeps clips whole.
        verified_only: train only on clips whose label was manually verified (default false,
            as in the papers; only the FSDKaggle2018 and Kaggle layouts carry the flag).
    """

    layout: str = "fsdkaggle2018"
    root: str = "data/FSDKaggle2018"
    cache_dir: str = "runs/cache/FSDKaggle2018"
    trim_top_db: float | None = 40.0
    verified_only: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"data.layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly augmentation of training examples (applied to raw audio; the log-mel input is
    computed from it inside the network, so both inputs always see the same augmentation).

    Attributes:
        time_shift_prob: probability of a uniformly random circular time shift of a clip before
            it is cropped or padded (default 1.0).
        pad_replication: a short clip that fits ``n`` times into the window appears ``k`` times,
            ``k`` uniform in 1..n, with random zero gaps before, between and after (default true,
            as in the papers); false places one copy at a uniformly random offset.
        same_class_mix_prob: probability that an example is a weighted sum of clips of its own
            class (default 0.25); the target stays one-hot.
        diff_class_mix_prob: probability that an example is a weighted sum of clips of different
            classes (default 0.25); the target holds the weights.
        max_mix_clips: most clips in one mixture; the number is uniform in 2..max (default 2).
        mix_weight_alpha: the mixing weights are drawn from a symmetric Dirichlet with this
            concentration (default 1.0, uniform on the simplex); they always sum to one.

    Robustness to rooms and microphones (beyond the papers; every probability defaults to 0, so
    the papers' recipe is unchanged unless an experiment turns them on):

        negative_label: the label of sounds outside the classes (default ``"_other"``); its
            training clips are the real backgrounds, and its examples may become noise.
        pitch_shift_prob: probability of a pitch shift of the clip by resampling (default 0).
        pitch_shift_semitones: the shift is uniform in +-this many semitones (default 1).
        reverb_prob: probability of a synthetic room (decaying-noise impulse response) (default 0).
        reverb_rt60_s_range: reverberation time of that room in seconds (default 0.1-1.0).
        reverb_wet_range: reverberant-to-dry RMS ratio (default 0.1-0.7).
        background_prob: probability of adding a background at random SNR (default 0).
        background_snr_db_range: SNR of the background in dB: the example's RMS where it
            sounds (loudest quarter of its frames) over the background's RMS (default 0-30).
        background_noise_share: share of backgrounds that are white, pink or brown noise
            (microphone and preamp hiss); the rest are training clips of ``negative_label``
            (street, air conditioner, speech, room tone) (default 0.2).
        negative_noise_prob: probability that an example of ``negative_label`` is replaced by
            coloured noise, so steady noise is learned as "other sound" (default 0).
        eq_prob: probability of a random microphone colour: a smooth gain curve over
            50 Hz-16 kHz (default 0).
        eq_gain_db: the curve stays within +-this many dB (default 6).
        low_cut_prob: probability of a high-pass (a small or distant microphone) (default 0).
        low_cut_hz_range: its cut-off in Hz, log-uniform (default 80-500).
        band_limit_prob: probability of a low-pass band limit (default 0).
        band_limit_hz_range: its cut-off in Hz, log-uniform; 3400 is the telephone band
            (default 3400-16000).
        saturation_prob: probability of soft clipping (``tanh``), an overloaded microphone or
            preamp (default 0).
        saturation_drive_db_range: how far the clipper is driven above the example's peak, in dB,
            uniform (default 3-24).
        level_prob: probability of setting the example's peak level (default 0).
        level_dbfs_range: that peak level in dBFS (default -40 to 0). The network normalises
            the peak above -60 dBFS, so this exercises quiet inputs, not loud ones.
    """

    time_shift_prob: float = 1.0
    pad_replication: bool = True
    same_class_mix_prob: float = 0.25
    diff_class_mix_prob: float = 0.25
    max_mix_clips: int = 2
    mix_weight_alpha: float = 1.0
    negative_label: str = "_other"
    pitch_shift_prob: float = 0.0
    pitch_shift_semitones: float = 1.0
    reverb_prob: float = 0.0
    reverb_rt60_s_range: tuple[float, float] = (0.1, 1.0)
    reverb_wet_range: tuple[float, float] = (0.1, 0.7)
    background_prob: float = 0.0
    background_snr_db_range: tuple[float, float] = (0.0, 30.0)
    background_noise_share: float = 0.2
    negative_noise_prob: float = 0.0
    eq_prob: float = 0.0
    eq_gain_db: float = 6.0
    low_cut_prob: float = 0.0
    low_cut_hz_range: tuple[float, float] = (80.0, 500.0)
    band_limit_prob: float = 0.0
    band_limit_hz_range: tuple[float, float] = (3400.0, 16000.0)
    saturation_prob: float = 0.0
    saturation_drive_db_range: tuple[float, float] = (3.0, 24.0)
    level_prob: float = 0.0
    level_dbfs_range: tuple[float, float] = (-40.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("time_shift_prob", "same_class_mix_prob", "diff_class_mix_prob", "pitch_shift_prob",
                     "reverb_prob", "background_prob", "background_noise_share", "negative_noise_prob",
                     "eq_prob", "low_cut_prob", "band_limit_prob", "saturation_prob", "level_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"augment.{name} must lie in [0, 1], not {value}")
        if self.same_class_mix_prob + self.diff_class_mix_prob > 1.0:
            raise ConfigError("augment.same_class_mix_prob + augment.diff_class_mix_prob must not exceed 1")
        if self.max_mix_clips < 2:
            raise ConfigError(f"augment.max_mix_clips must be at least 2, not {self.max_mix_clips}")
        if self.mix_weight_alpha <= 0:
            raise ConfigError(f"augment.mix_weight_alpha must be positive, not {self.mix_weight_alpha}")
        for name in ("reverb_rt60_s_range", "reverb_wet_range", "background_snr_db_range", "low_cut_hz_range",
                     "band_limit_hz_range", "saturation_drive_db_range", "level_dbfs_range"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ConfigError(f"augment.{name} must be a finite [low, high] with low <= high, not {[low, high]}")
        for name in ("reverb_rt60_s_range", "reverb_wet_range", "low_cut_hz_range", "band_limit_hz_range"):
            if getattr(self, name)[0] <= 0:
                raise ConfigError(f"augment.{name} must be positive, not {list(getattr(self, name))}")
        if self.band_limit_hz_range[1] > 22050.0 or self.low_cut_hz_range[1] > 22050.0:
            raise ConfigError("augment.low_cut_hz_range and augment.band_limit_hz_range must stay below 22050 Hz")
        if self.saturation_drive_db_range[0] < 0.0 or self.saturation_drive_db_range[1] > 40.0:
            raise ConfigError("augment.saturation_drive_db_range must lie in [0, 40] dB, "
                              f"not {list(self.saturation_drive_db_range)}")
        if self.level_dbfs_range[1] > 0.0:
            raise ConfigError(f"augment.level_dbfs_range must stay <= 0 dBFS, not {list(self.level_dbfs_range)}")
        for name in ("pitch_shift_semitones", "eq_gain_db"):
            value = getattr(self, name)
            if not 0.0 <= value <= 12.0:
                raise ConfigError(f"augment.{name} must lie in [0, 12], not {value}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training recipe (workshop paper, section 2.5).

    Attributes:
        stages: stages to run, in order (default audio, spec, comb); comb needs the audio and
            spec models of the same fold.
        num_folds: stratified folds; each fold model validates on one fold (default 5).
        folds: which folds to train (default ``None``: all).
        epochs: most epochs per stage and fold (default 300).
        patience_epochs: stop after this many epochs without a lower validation loss (default 35).
        stage_time_limit_s: end a stage after the first epoch that finishes this many seconds after
            the stage started or resumed in this process (default ``None``: no limit); its last
            checkpoint stays resumable, so a later run goes on with the next epoch. For a machine
            lent for minutes, where epochs per second are not known in advance.
        batch_size: examples per step and process (default 32).
        lr: Adam learning rate, fixed (default 1e-3).
        class_weighted: weight the loss by inverse class frequency (default true).
        precision: ``"fp32"``, ``"bf16"`` (autocast on CPU or CUDA) or ``"fp16"`` (CUDA AMP
            with a gradient scaler) (default ``"fp32"``).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"`` (default ``"auto"``).
        num_workers: data-loader worker processes per training process (default 4).
        seed: seed of folds, augmentation, shuffling and initialisation (default 0).
        progress: show tqdm progress bars (default true).
        max_clips_per_class: at most this many clips of each class per epoch, drawn afresh every
            epoch, so a large class does not dominate an epoch and epochs stay short (default
            ``None``: every clip every epoch). Class weights follow the drawn counts.
        init_from: a model bundle (``.rtag``, a cnn-comb of the same architecture) to start
            from instead of random weights (default ``None``): stage ``audio`` takes its raw-audio
            extractor, ``spec`` its spectrogram extractor, ``comb`` its hidden dense layers and,
            when the labels are the same, its output layer less the ``_other`` offset its export
            folded in (``negative_logit_offset`` of its provenance). A head trained on cached
            features starts from the same function: its first layer is rewritten for the
            standardised features. Branch heads start fresh.
        comb_extractors: where stage ``comb`` takes its frozen extractors from: ``"branches"``
            (the best cnn-audio and cnn-spec of the same fold, the papers' way; default) or
            ``"init_from"`` (the extractors of the ``init_from`` bundle, to retrain only the head
            of a shipped model on new data).
        comb_extractor_lr: when set, stage ``comb`` fine-tunes its extractors too, on audio, at this
            learning rate (the head at ``lr``; both follow ``lr_schedule``), with their BatchNorm
            statistics updated; meant after a head has been trained on frozen features, so that
            the first gradients reaching the extractors come from a useful head (default ``None``:
            the extractors stay frozen, the papers' stage 3).
        lr_schedule: ``"constant"`` (the papers' fixed rate; default) or ``"cosine"`` (from ``lr``
            down to 0 over ``epochs``, set at the start of every epoch).
        weight_decay: decoupled weight decay of AdamW (default 0: plain Adam, the papers' recipe).
        label_smoothing: training targets become ``(1 - s) * t + s / C`` (default 0).
        head_feature_crops: when set, stage ``comb`` computes the frozen extractors' features of
            this many augmented examples of every training clip once (the examples epochs
            ``1..K`` of the audio path would see) and of the validation crops, caches them in the
            fold folder (``features/``), and trains only the head on them, every cached example
            every epoch (``max_clips_per_class`` does not apply; class weights follow the cached
            counts). Features are standardised by their training mean and deviation, folded into
            the first dense layer when the model is saved (default ``None``: audio through the
            frozen extractors at every step, the papers' way).
        head_dropout: dropout before every dense layer of the head but the first, while training
            on cached features (default 0).
        head_input_dropout: dropout of the standardised features (default 0).
        head_feature_noise: standard deviation of Gaussian noise added to the standardised
            features while training (default 0).
    """

    stages: tuple[str, ...] = STAGES
    num_folds: int = 5
    folds: tuple[int, ...] | None = None
    epochs: int = 300
    patience_epochs: int = 35
    stage_time_limit_s: float | None = None
    batch_size: int = 32
    lr: float = 1e-3
    class_weighted: bool = True
    precision: str = "fp32"
    device: str = "auto"
    num_workers: int = 4
    seed: int = 0
    progress: bool = True
    max_clips_per_class: int | None = None
    init_from: str | None = None
    comb_extractors: str = "branches"
    comb_extractor_lr: float | None = None
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    head_feature_crops: int | None = None
    head_dropout: float = 0.0
    head_input_dropout: float = 0.0
    head_feature_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.comb_extractors not in COMB_EXTRACTORS:
            raise ConfigError(f"train.comb_extractors must be one of {', '.join(COMB_EXTRACTORS)}, not {self.comb_extractors!r}")
        if self.comb_extractors == "init_from" and self.init_from is None:
            raise ConfigError("train.comb_extractors 'init_from' needs train.init_from (a cnn-comb bundle)")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"train.lr must be a positive number, not {self.lr}")
        if self.stage_time_limit_s is not None and not (math.isfinite(self.stage_time_limit_s) and self.stage_time_limit_s > 0):
            raise ConfigError(f"train.stage_time_limit_s must be a positive number of seconds, not {self.stage_time_limit_s}")
        if self.comb_extractor_lr is not None:
            if not (math.isfinite(self.comb_extractor_lr) and self.comb_extractor_lr > 0):
                raise ConfigError(f"train.comb_extractor_lr must be a positive number, not {self.comb_extractor_lr}")
            if self.head_feature_crops is not None:
                raise ConfigError("train.comb_extractor_lr fine-tunes the extractors on audio; it cannot be combined "
                                  "with train.head_feature_crops (a head on cached, frozen features)")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"train.weight_decay must be a number >= 0, not {self.weight_decay}")
        for name in ("label_smoothing", "head_dropout", "head_input_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"train.{name} must lie in [0, 1), not {value}")
        if not (math.isfinite(self.head_feature_noise) and self.head_feature_noise >= 0):
            raise ConfigError(f"train.head_feature_noise must be a number >= 0, not {self.head_feature_noise}")
        if self.head_feature_crops is not None and self.head_feature_crops < 1:
            raise ConfigError(f"train.head_feature_crops must be at least 1, not {self.head_feature_crops}")
        if self.head_feature_crops is None:
            for name in ("head_dropout", "head_input_dropout", "head_feature_noise"):
                if getattr(self, name) != 0:
                    raise ConfigError(f"train.{name} applies to the head trained on cached features: "
                                      "set train.head_feature_crops too")
        if self.max_clips_per_class is not None and self.max_clips_per_class < 1:
            raise ConfigError(f"train.max_clips_per_class must be at least 1, not {self.max_clips_per_class}")
        for stage in self.stages:
            if stage not in STAGES:
                raise ConfigError(f"train.stages: unknown stage {stage!r} (known: {', '.join(STAGES)})")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.num_folds < 2:
            raise ConfigError(f"train.num_folds must be at least 2, not {self.num_folds}")
        for fold in self.folds or ():
            if not 0 <= fold < self.num_folds:
                raise ConfigError(f"train.folds: fold {fold} outside 0..{self.num_folds - 1}")
        for name in ("epochs", "patience_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, not {getattr(self, name)}")

    @property
    def fold_ids(self) -> tuple[int, ...]:
        """The folds this run trains."""
        return tuple(range(self.num_folds)) if self.folds is None else self.folds

    def learning_rate(self, epoch: int, base_lr: float | None = None) -> float:
        """The learning rate of ``epoch`` (1-based) under :attr:`lr_schedule`, starting from
        ``base_lr`` (default :attr:`lr`)."""
        start = self.lr if base_lr is None else base_lr
        if self.lr_schedule == "constant":
            return start
        return 0.5 * start * (1.0 + math.cos(math.pi * (epoch - 1) / self.epochs))


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """The papers' test-time procedure.

    Attributes:
        step_samples: step between crops of long clips and padded positions of short clips
            (default 5120, about 0.12 s; the technical report's efficient mode uses 51200).
        batch_size: inputs per forward pass (default 64).
        folds: fold models combined by geometric mean (default ``None``: all trained folds).
        weighting: how a clip's inputs weigh in its geometric mean: ``"equal"`` (default, the
            papers') or ``"energy"`` (rtag's runtime default; see :mod:`rtag.tta`).
        negative_logit_offset: added to the logit of ``augment.negative_label`` (default 0): the
            prior of sounds of no class, which class-weighted training sets to that of one class
            though they are most of what a microphone hears. Predictions use it, and ``export``
            folds it into the bundle's last layer, so the runtime applies it too.
        highpass_hz: the rumble filter of the front end to predict with (``model.highpass_hz``,
            :class:`rtag.networks.RumbleFilter`), for a model trained with another or none
            (default ``None``: the trained model's). It holds no weights; predictions use it and
            ``export`` writes it into the bundle's config.
    """

    step_samples: int = 5120
    batch_size: int = 64
    folds: tuple[int, ...] | None = None
    weighting: str = "equal"
    negative_logit_offset: float = 0.0
    highpass_hz: float | None = None

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(f"predict.weighting must be one of {', '.join(WEIGHTINGS)}, not {self.weighting!r}")
        if self.highpass_hz is not None and not self.highpass_hz > 0:
            raise ConfigError(f"predict.highpass_hz must be positive (or null: the trained model's), not {self.highpass_hz}")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: a model size trained in three stages over stratified folds.

    Attributes:
        name: a short name, used in reports (default ``"experiment"``).
        run_dir: folder of checkpoints, logs, predictions and reports (default ``"runs/experiment"``).
        data, model, augment, train, predict: see the respective classes. ``model.num_classes``
            is set from the data's label vocabulary when training starts.
    """

    name: str = "experiment"
    run_dir: str = "runs/experiment"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    predict: PredictConfig = dataclasses.field(default_factory=PredictConfig)


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two mappings; values of ``top`` win."""
    merged: dict[str, Any] = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load an experiment YAML, merging its ``model_file`` and applying ``key=value`` overrides.

    Args:
        path: the experiment YAML (``configs/train/*.yaml``) or a resolved ``config.yaml`` from a
            run directory.
        overrides: ``"train.epochs=3"``-style overrides, applied before ``model_file`` is
            merged, so ``model.*`` overrides win over the model file too.

    Raises:
        ConfigError: on a missing file, invalid YAML, an unknown key or a wrong type; the message
            names the file and the dotted key.
    """
    path = Path(path)
    data = apply_overrides(read_yaml_mapping(path), overrides, str(path))
    model_file = data.pop("model_file", None)
    if model_file is not None:
        if not isinstance(model_file, str):
            raise ConfigError(f"{path}: key 'model_file' expects a path, got {model_file!r}")
        model_path = (path.parent / model_file).resolve()
        model_data = read_yaml_mapping(model_path)
        data["model"] = _merge(model_data, data.get("model") or {})
    return from_dict(ExperimentConfig, data, source=str(path))


def resolved_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The fully resolved config as plain data (what checkpoints store)."""
    return to_dict(cfg)


def save_resolved(cfg: ExperimentConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML to ``path`` (atomically) and return the path."""
    text = yaml.safe_dump(resolved_dict(cfg), sort_keys=False)
    return atomic_write_bytes(Path(path), text.encode("utf-8"))
