"""Experiment configs: model_file merging, --set overrides, strict keys, the Table 3 configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tiny_fsd import REPO_ROOT

from offline.config import ExperimentConfig, load_experiment, save_resolved
from rtag.config import ConfigError

TRAIN_CONFIGS = REPO_ROOT / "configs" / "train"


@pytest.mark.parametrize(("seconds", "window", "frames", "first_pool"), [(1, 44100, 170, 8), (2, 88200, 300, 16), (3, 132300, 400, 16)])
def test_table3_configs_use_the_papers_recipe_and_model_sizes(seconds: int, window: int, frames: int, first_pool: int) -> None:
    cfg = load_experiment(TRAIN_CONFIGS / f"fsd2018_{seconds}s.yaml")
    assert (cfg.model.window_samples, cfg.model.spec_frames, cfg.model.audio.pools[0]) == (window, frames, first_pool)
    assert cfg.model.kind == "comb" and cfg.train.stages == ("audio", "spec", "comb")
    t = cfg.train
    assert (t.num_folds, t.epochs, t.patience_epochs, t.batch_size, t.lr, t.class_weighted) == (5, 300, 35, 32, 1e-3, True)
    assert cfg.data.trim_top_db == 40.0 and cfg.predict.step_samples == 5120


def test_overrides_reach_every_section_and_beat_the_model_file() -> None:
    cfg = load_experiment(
        TRAIN_CONFIGS / "fsd2018_2s.yaml",
        ["train.epochs=3", "model.head_units=[64, 32]", "augment.max_mix_clips=3", "predict.step_samples=51200"],
    )
    assert cfg.train.epochs == 3 and cfg.model.head_units == (64, 32)
    assert cfg.augment.max_mix_clips == 3 and cfg.predict.step_samples == 51200


def test_unknown_keys_name_the_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"fsd2018_2s.yaml: unknown key 'train.epoch'"):
        load_experiment(TRAIN_CONFIGS / "fsd2018_2s.yaml", ["train.epoch=3"])
    with pytest.raises(ConfigError, match="train.precision"):
        load_experiment(TRAIN_CONFIGS / "fsd2018_2s.yaml", ["train.precision=fp8"])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.head_dropout=0.3"], "train.head_dropout applies to the head trained on cached features"),
        (["train.head_feature_noise=0.1"], "train.head_feature_noise applies"),
        (["train.head_feature_crops=0"], "train.head_feature_crops must be at least 1"),
        (["train.comb_extractors=init_from"], "train.comb_extractors 'init_from' needs train.init_from"),
        (["train.comb_extractors=shared"], "train.comb_extractors must be one of branches, init_from"),
        (["train.lr_schedule=step"], "train.lr_schedule must be one of constant, cosine"),
        (["train.label_smoothing=1.0"], r"train.label_smoothing must lie in \[0, 1\)"),
        (["train.weight_decay=-0.1"], "train.weight_decay must be a number >= 0"),
        (["train.lr=0"], "train.lr must be a positive number"),
        (["train.comb_extractor_lr=-1e-4"], "train.comb_extractor_lr must be a positive number"),
        (["train.comb_extractor_lr=1e-4", "train.head_feature_crops=2"], "cannot be combined with train.head_feature_crops"),
    ],
    ids=["dropout-without-crops", "noise-without-crops", "zero-crops", "extractors-without-init", "extractors-unknown",
         "schedule-unknown", "smoothing-one", "negative-decay", "zero-lr", "negative-extractor-lr",
         "extractor-lr-on-cached-features"],
)
def test_head_training_keys_are_range_checked(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_experiment(TRAIN_CONFIGS / "fsd2018_2s.yaml", overrides)


def test_cosine_schedule_falls_from_lr_towards_zero_over_the_epochs() -> None:
    cfg = load_experiment(TRAIN_CONFIGS / "fsd2018_2s.yaml", ["train.lr_schedule=cosine", "train.epochs=4", "train.lr=0.01"])
    rates = [cfg.train.learning_rate(epoch) for epoch in range(1, 5)]
    assert rates == pytest.approx([0.01, 0.01 * (1 + 2**-0.5) / 2, 0.005, 0.01 * (1 - 2**-0.5) / 2])
    constant = load_experiment(TRAIN_CONFIGS / "fsd2018_2s.yaml", ["train.lr=0.01"])
    assert {constant.train.learning_rate(epoch) for epoch in range(1, 300)} == {0.01}
    assert cfg.train.learning_rate(3, base_lr=0.002) == pytest.approx(0.001)  # another group, same curve


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_experiment(TRAIN_CONFIGS / "tiny.yaml", ["train.seed=7"])
    path = save_resolved(cfg, tmp_path / "config.yaml")
    assert "model_file" not in yaml.safe_load(path.read_text())
    assert load_experiment(path) == cfg
    assert isinstance(cfg, ExperimentConfig)
