"""Training: the weighted soft-target loss, a killed run that resumes where it stopped, and the cnn-comb
head trained on cached features."""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_fsd import TINY_CONFIG, TinyDataset, tiny_overrides

from offline.checkpoint import load_checkpoint
from offline.config import ExperimentConfig, load_experiment
from offline.datasets import read_dataset
from offline.head_features import (
    STD_FLOOR,
    FeatureSet,
    HeadOnFeatures,
    cached_features,
    folded_state_dict,
    unfold_standardisation_,
)
from offline.metrics import mean_average_precision_at_k, top_k
from offline.preprocess import prepare_cache
from offline.run_layout import RunLayout
from offline.training import class_weights, load_stage_network, soft_cross_entropy, train_experiment
from rtag.bundle import save_bundle
from rtag.config import ConfigError
from rtag.networks import CnnComb, TaggerNetwork, build_network


def test_loss_with_one_hot_targets_is_keras_class_weighted_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    classes = torch.tensor([0, 1, 2, 3, 1, 1])
    weights = class_weights(classes.numpy(), 4)
    expected = (F.cross_entropy(logits, classes, reduction="none") * weights[classes]).mean()
    assert soft_cross_entropy(logits, F.one_hot(classes, 4).float(), weights) == pytest.approx(float(expected))


def test_soft_targets_weight_each_class_share() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    target = torch.tensor([[0.3, 0.7, 0.0]])
    log_probs = F.log_softmax(logits, dim=-1)[0]
    weights = torch.tensor([2.0, 0.5, 1.0])
    expected = -(0.3 * 2.0 * log_probs[0] + 0.7 * 0.5 * log_probs[1])
    assert soft_cross_entropy(logits, target, weights) == pytest.approx(float(expected))


def test_class_weights_are_inverse_frequency() -> None:
    weights = class_weights(np.array([0, 0, 0, 1]), 3)
    np.testing.assert_allclose(weights.numpy(), [4 / 9, 4 / 3, 1.0])


@pytest.fixture(scope="module")
def prepared_cache(tiny_fsd: TinyDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("prepared") / "cache"
    prepare_cache(read_dataset("fsdkaggle2018", tiny_fsd.root), cache, progress=False)
    return cache


def _config(tiny_fsd: TinyDataset, work: Path, cache: Path, epochs: int, *extra: str) -> ExperimentConfig:
    overrides = tiny_overrides(
        tiny_fsd.root, work, **{"data.cache_dir": cache, "train.epochs": epochs, "train.folds": "[0]", "train.patience_epochs": 10}
    )
    return load_experiment(TINY_CONFIG, overrides + list(extra))


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch_and_matches_an_uninterrupted_run(tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path) -> None:
    stages = "train.stages=[audio, comb]"
    with pytest.raises(FileNotFoundError, match="spec/fold0/best.pt"):
        train_experiment(_config(tiny_fsd, tmp_path / "no-spec", prepared_cache, 1, stages))
    stages = "train.stages=[spec, comb]"
    straight = tmp_path / "straight"
    # cnn-comb needs both branches: train the audio stage once and share it
    train_experiment(_config(tiny_fsd, straight, prepared_cache, 4, "train.stages=[audio]"))
    resumed = tmp_path / "resumed"
    shutil.copytree(straight / "run" / "audio", resumed / "run" / "audio")

    train_experiment(_config(tiny_fsd, straight, prepared_cache, 4, stages))
    # each stage "killed" after epoch 2 and run again; comb starts once its branches are final
    for stage in ("spec", "comb"):
        first = train_experiment(_config(tiny_fsd, resumed, prepared_cache, 2, f"train.stages=[{stage}]"))
        assert [r.epochs for r in first] == [2]
        second = train_experiment(_config(tiny_fsd, resumed, prepared_cache, 4, f"train.stages=[{stage}]"))
        assert [r.epochs for r in second] == [4]

    for stage in ("spec", "comb"):
        a = load_checkpoint(straight / "run" / stage / "fold0" / "last.pt")
        b = load_checkpoint(resumed / "run" / stage / "fold0" / "last.pt")
        assert a["epoch"] == b["epoch"] == 4
        assert [row["epoch"] for row in b["history"]] == [1, 2, 3, 4]
        rows = [json.loads(line) for line in (resumed / "run" / stage / "fold0" / "metrics.jsonl").read_text().splitlines()]
        assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
        for key in a["model"]:
            torch.testing.assert_close(a["model"][key], b["model"][key], msg=f"{stage}: {key} differs after resuming")
        assert a["best_epoch"] == b["best_epoch"] and a["best_val_loss"] == pytest.approx(b["best_val_loss"])
        for x, y in zip(a["history"], b["history"]):
            assert x["val_loss"] == pytest.approx(y["val_loss"]) and x["train_loss"] == pytest.approx(y["train_loss"])
        assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()

    # the frozen branches of cnn-comb are exactly the trained cnn-audio and cnn-spec extractors
    comb = load_checkpoint(resumed / "run" / "comb" / "fold0" / "best.pt")["model"]
    spec = load_checkpoint(resumed / "run" / "spec" / "fold0" / "best.pt")["model"]
    for key, value in spec.items():
        if key.startswith("extractor."):
            torch.testing.assert_close(comb["spec_extractor." + key[len("extractor."):]], value)

    # a finished run is left alone; changing the model under a run is refused with the key named
    assert [r.epochs for r in train_experiment(_config(tiny_fsd, resumed, prepared_cache, 4, stages))] == [4, 4]
    with pytest.raises(ValueError, match="'model.head_units'"):
        train_experiment(_config(tiny_fsd, resumed, prepared_cache, 5, stages, "model.head_units=[8]"))


def test_a_stage_past_its_time_limit_ends_after_the_epoch_and_resumes_with_the_next(
    tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path
) -> None:
    limited = ("train.stages=[audio]", "train.stage_time_limit_s=1e-6")
    assert [r.epochs for r in train_experiment(_config(tiny_fsd, tmp_path, prepared_cache, 3, *limited))] == [1]
    state = load_checkpoint(tmp_path / "run" / "audio" / "fold0" / "last.pt")
    assert state["epoch"] == 1 and not state["stopped_early"]
    assert [r.epochs for r in train_experiment(_config(tiny_fsd, tmp_path, prepared_cache, 3, *limited))] == [2]
    assert [r.epochs for r in train_experiment(_config(tiny_fsd, tmp_path, prepared_cache, 3, limited[0]))] == [3]
    with pytest.raises(ConfigError, match="train.stage_time_limit_s must be a positive number of seconds, not 0"):
        _config(tiny_fsd, tmp_path, prepared_cache, 3, "train.stage_time_limit_s=0")


def test_bf16_autocast_trains_on_the_cpu(tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_fsd, tmp_path, prepared_cache, 1, "train.stages=[spec]", "train.precision=bf16")
    (result,) = train_experiment(cfg)
    assert result.epochs == 1 and np.isfinite(result.best_val_loss)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    from offline.training import cpu_has_native_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(info) is True
    info.write_text("processor : 0\nflags : fpu sse2 avx2 fma\n")
    assert cpu_has_native_bf16(info) is False
    assert cpu_has_native_bf16(tmp_path / "missing") is None


HEAD_ON_FEATURES = (
    "train.stages=[comb]", "train.head_feature_crops=2", "train.head_dropout=0.3", "train.head_input_dropout=0.2",
    "train.head_feature_noise=0.3", "train.weight_decay=0.1", "train.label_smoothing=0.1",
)  # a constant rate: the cosine schedule spans train.epochs, which this test raises to resume


@pytest.mark.slow
def test_comb_head_trains_on_cached_features_resumes_and_saves_a_plain_network(
    tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_experiment(_config(tiny_fsd, straight, prepared_cache, 1, "train.stages=[audio, spec]"))
    for stage in ("audio", "spec"):
        shutil.copytree(straight / "run" / stage, resumed / "run" / stage)
    train_experiment(_config(tiny_fsd, straight, prepared_cache, 4, *HEAD_ON_FEATURES))
    assert [r.epochs for r in train_experiment(_config(tiny_fsd, resumed, prepared_cache, 2, *HEAD_ON_FEATURES))] == [2]
    assert [r.epochs for r in train_experiment(_config(tiny_fsd, resumed, prepared_cache, 4, *HEAD_ON_FEATURES))] == [4]

    fold_dir = resumed / "run" / "comb" / "fold0"
    crops = [FeatureSet.load(fold_dir / "features" / f"train_{k}.npz") for k in (1, 2)]
    val = FeatureSet.load(fold_dir / "features" / "val.npz")
    folds = list(csv.DictReader((resumed / "run" / "folds.csv").open()))
    assert crops[0].features.shape[0] == crops[1].features.shape[0] == sum(row["fold"] != "0" for row in folds)
    assert val.features.shape[0] == sum(row["fold"] == "0" for row in folds)
    assert not np.array_equal(crops[0].features, crops[1].features)  # two different augmented crops

    a = load_checkpoint(straight / "run" / "comb" / "fold0" / "last.pt")
    b = load_checkpoint(fold_dir / "last.pt")
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], msg=f"{key} differs after resuming")

    # the saved network takes raw features: the standardisation is folded into its first layer
    network, _ = load_stage_network(RunLayout(resumed / "run"), "comb", 0)
    trained = build_network(network.config)
    trained.load_state_dict(b["model"])
    train_x = torch.from_numpy(FeatureSet.concatenate(crops).features)
    mean, std = train_x.mean(dim=0), train_x.std(dim=0) + STD_FLOOR
    trainer = HeadOnFeatures(copy.deepcopy(trained.head), mean, std, 0.3, 0.2, 0.3).eval()
    trained.load_state_dict(folded_state_dict(trained, mean, std))
    val_x = torch.from_numpy(val.features)
    with torch.no_grad():
        torch.testing.assert_close(trained.head.eval()(val_x), trainer(val_x), atol=1e-4, rtol=1e-4)
        # and the features are the network's own for the validation audio
        best = load_checkpoint(fold_dir / "best.pt")
        logits = network.head(val_x).numpy()
    labels = json.loads((resumed / "run" / "labels.json").read_text())
    actual = [labels[i] for i in val.targets.argmax(axis=1)]
    assert mean_average_precision_at_k(top_k(logits, labels, 3), actual) == pytest.approx(best["val_map3"])


class _Crops(torch.utils.data.Dataset):
    """Fixed audio rows and one-hot targets; ``set_epoch`` shifts the audio so each crop differs."""

    def __init__(self, audio: torch.Tensor, classes: int) -> None:
        self.audio, self.classes, self.epoch = audio, classes, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.audio.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.roll(self.audio[index], 997 * self.epoch), F.one_hot(torch.tensor(index % self.classes), self.classes)


def test_cached_features_on_a_cpu_are_the_networks_own_and_leave_it_as_it_was(
    tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path
) -> None:
    cfg = _config(tiny_fsd, tmp_path, prepared_cache, 1, *HEAD_ON_FEATURES)
    torch.manual_seed(3)
    network = build_network(cfg.model)
    assert isinstance(network, CnnComb)
    network.train()
    with torch.no_grad():  # BatchNorm statistics away from their defaults
        network(0.1 * torch.randn(8, cfg.model.window_samples))
    network.freeze_features()
    before = copy.deepcopy(network.state_dict())
    audio = 0.1 * torch.randn(5, cfg.model.window_samples)
    train_set, val_set = _Crops(audio, cfg.model.num_classes), _Crops(audio[:3], cfg.model.num_classes)

    train, val = cached_features(cfg, network, tmp_path / "features", train_set, val_set, torch.device("cpu"),
                                 contextlib.nullcontext)

    with torch.no_grad():
        crops = [network.features(torch.roll(audio, 997 * crop, dims=1)) for crop in (1, 2)]
        expected_val = network.features(audio[:3])
    torch.testing.assert_close(torch.from_numpy(train.features), torch.cat(crops), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(val.features), expected_val, atol=1e-4, rtol=1e-4)
    assert train.targets.shape == (10, cfg.model.num_classes)
    for key, tensor in network.state_dict().items():
        torch.testing.assert_close(tensor, before[key], msg=f"{key} changed")


def _shipped_bundle(tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path) -> tuple[TaggerNetwork, Path]:
    """A cnn-comb trained one epoch per stage, and the bundle it was saved as."""
    first = tmp_path / "first"
    train_experiment(_config(tiny_fsd, first, prepared_cache, 1))
    shipped, checkpoint = load_stage_network(RunLayout(first / "run"), "comb", 0)
    return shipped, save_bundle(tmp_path / "shipped.rtag", shipped, shipped.config, checkpoint["labels"])


@pytest.mark.slow
def test_comb_head_retrains_on_the_extractors_of_the_init_from_bundle(
    tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path
) -> None:
    shipped, bundle = _shipped_bundle(tiny_fsd, prepared_cache, tmp_path)

    again = tmp_path / "again"
    cfg = _config(tiny_fsd, again, prepared_cache, 2, *HEAD_ON_FEATURES, f"train.init_from={bundle}",
                  "train.comb_extractors=init_from")
    assert [r.epochs for r in train_experiment(cfg)] == [2]
    assert not (again / "run" / "audio").exists() and not (again / "run" / "spec").exists()
    retrained, _ = load_stage_network(RunLayout(again / "run"), "comb", 0)
    old, new = shipped.state_dict(), retrained.state_dict()
    extractor_keys = [key for key in old if key.startswith(("audio_extractor.", "spec_extractor."))]
    assert extractor_keys
    for key in extractor_keys:
        torch.testing.assert_close(new[key], old[key], msg=f"{key} is not the bundle's")
    assert not torch.equal(new["head.0.weight"], old["head.0.weight"])  # the head did train


def test_unfolding_the_standardisation_is_the_inverse_of_folding_it() -> None:
    torch.manual_seed(5)
    network = build_network(load_experiment(TINY_CONFIG).model)
    assert isinstance(network, CnnComb)
    network.eval()
    features = torch.randn(6, network.head[0].in_features)
    mean, std = features.mean(dim=0), features.std(dim=0) + STD_FLOOR
    with torch.no_grad():
        raw = network.head(features)
        unfold_standardisation_(network.head, mean, std)
        torch.testing.assert_close(network.head((features - mean) / std), raw, atol=1e-5, rtol=1e-5)
        network.load_state_dict(folded_state_dict(network, mean, std))
        torch.testing.assert_close(network.head(features), raw, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_a_head_warm_started_from_an_exported_bundle_starts_from_the_bundles_function(
    tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path
) -> None:
    """A bundle's head takes raw features and its export folded the negative label's offset into the
    output bias; a head retrained on standardised cached features must start from the same function."""
    shipped, _ = _shipped_bundle(tiny_fsd, prepared_cache, tmp_path)
    labels = json.loads((tmp_path / "first" / "run" / "labels.json").read_text())
    exported = copy.deepcopy(shipped)
    output = exported.head[len(exported.head) - 1]
    with torch.no_grad():
        output.bias[labels.index("Cough")] += 1.5
    bundle = save_bundle(tmp_path / "exported.rtag", exported, exported.config, labels,
                         provenance={"negative_logit_offset": 1.5})

    cfg = _config(tiny_fsd, tmp_path / "refit", prepared_cache, 1, "train.stages=[comb]", "train.head_feature_crops=1",
                  f"train.init_from={bundle}", "train.comb_extractors=init_from", "augment.negative_label=Cough",
                  "train.lr=1e-12")
    assert [r.epochs for r in train_experiment(cfg)] == [1]
    refit = load_checkpoint(tmp_path / "refit" / "run" / "comb" / "fold0" / "best.pt")["model"]
    old = shipped.state_dict()  # the function before the export's offset
    linear = [f"head.{i}" for i, module in enumerate(shipped.head) if isinstance(module, torch.nn.Linear)]
    for name in (f"{layer}.{part}" for layer in linear for part in ("weight", "bias")):
        torch.testing.assert_close(refit[name], old[name], atol=1e-4, rtol=1e-4, msg=f"{name} is not the bundle's")


@pytest.mark.slow
def test_comb_fine_tunes_its_extractors_at_their_own_rate_when_asked(
    tiny_fsd: TinyDataset, prepared_cache: Path, tmp_path: Path
) -> None:
    shipped, bundle = _shipped_bundle(tiny_fsd, prepared_cache, tmp_path)

    tuned = tmp_path / "tuned"
    cfg = _config(tiny_fsd, tuned, prepared_cache, 1, "train.stages=[comb]", f"train.init_from={bundle}",
                  "train.comb_extractors=init_from", "train.comb_extractor_lr=0.0001", "train.lr=0.01")
    assert [r.epochs for r in train_experiment(cfg)] == [1]
    state = load_checkpoint(tuned / "run" / "comb" / "fold0" / "last.pt")
    groups = state["optimizer"]["param_groups"]
    assert [group["lr"] for group in groups] == [0.0001, 0.01]  # extractors, then the head
    old, new = shipped.state_dict(), state["model"]
    for prefix in ("audio_extractor.", "spec_extractor.", "head."):
        keys = [key for key in old if key.startswith(prefix) and key.endswith(".weight")]
        assert keys and any(not torch.equal(new[key], old[key]) for key in keys), f"{prefix} did not train"
