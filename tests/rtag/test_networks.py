"""The papers' networks: shapes of Tables 1 and 2, parameter counts, comb assembly and ablation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rtag.config import ConfigError, ModelConfig, load_yaml
from rtag.networks import (
    AudioFeatures,
    CnnAudio,
    CnnComb,
    CnnSpec,
    FrontEnd,
    RumbleFilter,
    build_network,
    count_parameters,
    cpu_inference_form,
)
from tests.conftest import CONFIGS

# Keras-style counts (BatchNorm running statistics included), as the papers count.
# comb_2s matches the technical report's 3,136,649 exactly (see docs/architecture.md).
PINNED_PARAMETERS = {
    "audio_1s": 888_009,
    "audio_2s": 888_009,
    "audio_3s": 1_019_081,
    "spec_1s": 1_778_921,
    "spec_2s": 1_516_777,
    "spec_3s": 1_647_849,
    "comb_1s": 3_660_937,
    "comb_2s": 3_136_649,
    "comb_3s": 3_529_865,
    "comb_tiny": 19_749,
}


def load(name: str) -> ModelConfig:
    return load_yaml(CONFIGS / "model" / f"{name}.yaml", ModelConfig)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", sorted(PINNED_PARAMETERS))
def test_each_config_maps_raw_audio_to_class_probabilities(name: str) -> None:
    config = load(name)
    network = build_network(config).eval()
    audio = 0.1 * torch.randn(2, config.window_samples)
    with torch.no_grad():
        probs = torch.softmax(network(audio), dim=-1)
    assert probs.shape == (2, 41)
    assert torch.all(torch.isfinite(probs))
    assert torch.allclose(probs.sum(dim=-1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("name", sorted(PINNED_PARAMETERS))
def test_parameter_counts_are_pinned(name: str) -> None:
    assert count_parameters(build_network(load(name))) == PINNED_PARAMETERS[name]


def test_two_second_comb_matches_the_technical_report_count() -> None:
    network = build_network(load("comb_2s"))
    assert count_parameters(network, keras_style=True) == 3_136_649
    # 6,208 BatchNorm running means and variances are not trainable parameters
    assert count_parameters(network, keras_style=False) == 3_136_649 - 6_208


def test_paper_text_head_reading_gives_the_table_count() -> None:
    """Four hidden layers 512-256-256-128 without BatchNorm: the count the tables imply."""
    config = load_yaml(
        CONFIGS / "model" / "comb_2s.yaml",
        ModelConfig,
        overrides=["head_units=[512, 256, 256, 128]", "head_batch_norm=false"],
    )
    assert count_parameters(build_network(config)) == 2_867_337


@pytest.mark.parametrize(
    ("name", "table_1_shapes"),
    [
        ("audio_1s", [5512, 344, 21, 1]),
        ("audio_2s", [5512, 344, 21, 1]),
        ("audio_3s", [8268, 516, 32, 2]),
    ],
)
def test_cnn_audio_block_outputs_follow_table_1(name: str, table_1_shapes: list[int]) -> None:
    config = load(name)
    extractor = AudioFeatures(config.audio, config.window_samples).eval()
    x = torch.zeros(1, 1, config.window_samples)
    lengths = []
    with torch.no_grad():
        for layer in extractor.blocks:
            x = layer(x)
            if isinstance(layer, torch.nn.BatchNorm1d):
                lengths.append(x.shape[-1])
    assert lengths == table_1_shapes
    assert x.shape[1] == 256


@pytest.mark.parametrize(
    ("name", "table_2_pooled_shapes"),
    [
        ("spec_1s", [(64, 85), (32, 21), (16, 10), (8, 5), (4, 2)]),
        ("spec_2s", [(64, 150), (32, 75), (16, 18), (8, 9), (4, 4), (2, 2)]),
        ("spec_3s", [(64, 200), (32, 100), (16, 25), (8, 12), (4, 6), (2, 3)]),
    ],
)
def test_cnn_spec_pooled_shapes_follow_table_2(name: str, table_2_pooled_shapes: list[tuple[int, int]]) -> None:
    config = load(name)
    network = CnnSpec(config).eval()
    with torch.no_grad():
        (x,) = network.front_end(0.1 * torch.randn(1, config.window_samples))
        assert x.shape == (1, 1, 128, config.spec_frames)
        shapes = []
        for layer in network.extractor.blocks:
            x = layer(x)
            if isinstance(layer, torch.nn.MaxPool2d):
                shapes.append(tuple(x.shape[-2:]))
    assert shapes == table_2_pooled_shapes


def test_comb_from_branches_reuses_their_features_exactly() -> None:
    config = load("comb_tiny")
    audio = CnnAudio(ModelConfig(**{**config.__dict__, "kind": "audio"})).eval()
    spec = CnnSpec(ModelConfig(**{**config.__dict__, "kind": "spec"})).eval()
    comb = CnnComb.from_branches(audio, spec, config).eval()
    x = 0.1 * torch.randn(3, config.window_samples)
    with torch.no_grad():
        normalized, spectrogram = comb.front_end(x)
        assert torch.equal(comb.audio_extractor(normalized), audio.features(x))
        assert torch.equal(comb.spec_extractor(spectrogram), spec.features(x))


def test_frozen_comb_trains_only_its_head() -> None:
    config = load("comb_tiny")
    comb = CnnComb(config)
    comb.freeze_features()
    comb.train()
    stats_before = comb.audio_extractor.blocks[5].running_mean.clone()
    optimizer = torch.optim.Adam([p for p in comb.parameters() if p.requires_grad], lr=1e-2)
    frozen_before = [p.clone() for p in comb.spec_extractor.parameters()]
    loss = comb(0.1 * torch.randn(4, config.window_samples)).logsumexp(dim=-1).mean()
    loss.backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, comb.spec_extractor.parameters()))
    assert torch.equal(stats_before, comb.audio_extractor.blocks[5].running_mean)
    assert all(p.grad is not None for p in comb.head.parameters())


def test_zeroed_inputs_change_the_output_and_are_validated() -> None:
    config = load("comb_tiny")
    comb = CnnComb(config).eval()
    x = 0.1 * torch.randn(2, config.window_samples)
    with torch.no_grad():
        both = comb(x)
        no_audio = comb(x, zero_branch="audio")
        no_spec = comb(x, zero_branch="spec")
        zero_audio_direct = comb.head(
            torch.cat(
                [
                    comb.audio_extractor(torch.zeros_like(x)),
                    comb.spec_extractor(comb.front_end(x)[1]),
                ],
                dim=1,
            )
        )
    assert not torch.allclose(both, no_audio)
    assert not torch.allclose(both, no_spec)
    assert torch.allclose(no_audio, zero_audio_direct, atol=1e-6)
    with pytest.raises(ValueError, match="zero_branch"):
        comb(x, zero_branch="both")


def test_peak_normalisation_makes_the_output_gain_invariant() -> None:
    config = load("comb_tiny")
    network = build_network(config).eval()
    x = 0.2 * torch.randn(2, config.window_samples)
    with torch.no_grad():
        assert torch.allclose(network(x), network(0.25 * x), atol=1e-4)


def _gain_db(rumble_filter: RumbleFilter, frequency_hz: float, sample_rate_hz: int = 44100) -> float:
    """Gain of ``rumble_filter`` on a 2 s sine, measured away from the edges."""
    t = np.arange(2 * sample_rate_hz) / sample_rate_hz
    tone = torch.tensor(np.sin(2 * np.pi * frequency_hz * t), dtype=torch.float32)[None]
    inner = slice(sample_rate_hz // 4, -sample_rate_hz // 4)
    out = rumble_filter(tone)[0, inner]
    return float(10 * torch.log10(out.pow(2).mean() / tone[0, inner].pow(2).mean()))


def test_rumble_filter_is_3_db_down_at_its_cutoff_and_flat_above() -> None:
    rumble_filter = RumbleFilter(30.0, 44100)
    assert _gain_db(rumble_filter, 30.0) == pytest.approx(-3.0, abs=0.1)
    assert _gain_db(rumble_filter, 15.0) < -18.0  # an octave below
    assert _gain_db(rumble_filter, 7.5) < -40.0  # two octaves below
    assert abs(_gain_db(rumble_filter, 41.2)) < 0.4  # a double bass's lowest string
    for frequency_hz in (45.0, 60.0, 80.0, 100.0, 1000.0, 10000.0):
        assert abs(_gain_db(rumble_filter, frequency_hz)) < 0.2


def test_rumble_filter_is_zero_phase_and_takes_out_an_offset() -> None:
    t = torch.arange(88200) / 44100
    tone = torch.sin(2 * torch.pi * 440.0 * t)[None]
    out = RumbleFilter(30.0, 44100)(tone + 0.3)
    assert torch.allclose(out[:, 2000:-2000], tone[:, 2000:-2000], atol=2e-3)


def test_rumble_no_longer_sets_the_level_of_what_the_network_hears() -> None:
    config = dataclasses.replace(load("comb_tiny"), highpass_hz=30.0)
    t = torch.arange(config.window_samples) / config.sample_rate_hz
    note = 0.05 * torch.sin(2 * torch.pi * 220.0 * t)[None]
    rumble = 0.2 * torch.sin(2 * torch.pi * 5.0 * t)[None]  # 12 dB above the note

    def likeness(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a * b).sum() / (a.norm() * b.norm()))

    alone, = FrontEnd(config, ("audio",))(note)
    filtered, = FrontEnd(config, ("audio",))(note + rumble)
    plain, = FrontEnd(dataclasses.replace(config, highpass_hz=None), ("audio",))(note + rumble)
    assert likeness(filtered, alone) > 0.97
    assert likeness(plain, alone) < 0.3


def test_rumble_filter_settings_are_checked() -> None:
    for bad in (0.0, -5.0, 22050.0):
        with pytest.raises(ConfigError, match="model.highpass_hz"):
            dataclasses.replace(load("comb_tiny"), highpass_hz=bad)
    with pytest.raises(ConfigError, match="inputs longer than"):
        FrontEnd(dataclasses.replace(load("comb_tiny"), highpass_hz=0.5))


@pytest.mark.parametrize("name", ["audio_2s", "spec_2s", "comb_2s", "comb_tiny"])
def test_cpu_inference_form_gives_the_same_outputs_and_leaves_the_network_alone(name: str) -> None:
    network = build_network(load(name)).eval()
    with torch.no_grad():  # trained-looking BatchNorm statistics, so the copy must carry them over
        for layer in network.modules():
            if isinstance(layer, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
    before = {key: value.clone() for key, value in network.state_dict().items()}
    fast = cpu_inference_form(network)
    audio = 0.3 * torch.randn(3, load(name).window_samples)
    with torch.inference_mode():
        expected, got = network(audio), fast(audio)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()
    assert not fast.training and not any(p.requires_grad for p in fast.parameters())
    assert all(torch.equal(before[key], value) for key, value in network.state_dict().items())
    assert any(isinstance(m, torch.nn.Conv1d) for m in network.modules()) == name.startswith(("audio", "comb"))
    assert not any(isinstance(m, torch.nn.Conv1d) for m in fast.modules())


def test_cpu_inference_form_pads_even_audio_kernels_as_the_network_does() -> None:
    config = load("comb_tiny")
    config = dataclasses.replace(config, audio=dataclasses.replace(config.audio, kernels=[10, 8, 6, 4]))
    network = build_network(config).eval()
    audio = 0.3 * torch.randn(2, config.window_samples)
    with torch.inference_mode():
        assert torch.allclose(cpu_inference_form(network)(audio), network(audio), atol=1e-5)
