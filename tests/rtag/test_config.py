"""Strict YAML configs: unknown keys, wrong types and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtag.config import ConfigError, ModelConfig, apply_overrides, from_dict, load_yaml, read_yaml_mapping, to_dict
from tests.conftest import CONFIGS


def test_default_model_config_is_the_two_second_comb() -> None:
    config = ModelConfig()
    assert (config.kind, config.window_samples, config.spec_frames) == ("comb", 88200, 300)
    assert config.window_s == 2.0


def test_round_trip_through_plain_data_is_lossless() -> None:
    config = load_yaml(CONFIGS / "model" / "comb_1s.yaml", ModelConfig)
    assert from_dict(ModelConfig, to_dict(config)) == config


def test_unknown_key_names_file_and_dotted_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: comb\nmel:\n  n_ftt: 1024\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'mel\.n_ftt'"):
        load_yaml(path, ModelConfig)


def test_wrong_type_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("window_samples: two seconds\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: key 'window_samples' expects an integer"):
        load_yaml(path, ModelConfig)


def test_bool_is_not_accepted_as_a_number() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        from_dict(ModelConfig, {"num_classes": True})


def test_invalid_kind_is_rejected() -> None:
    with pytest.raises(ConfigError, match="kind"):
        from_dict(ModelConfig, {"kind": "transformer"}, source="x.yaml")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: config file not found"):
        load_yaml(tmp_path / "nowhere.yaml", ModelConfig)


def test_invalid_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: [comb\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_yaml(path, ModelConfig)


def test_overrides_parse_yaml_values_and_nest() -> None:
    config = load_yaml(
        CONFIGS / "model" / "comb_2s.yaml",
        ModelConfig,
        overrides=["head_units=[256, 128]", "mel.top_db=null", "peak_norm_floor=1e-4"],
    )
    assert config.head_units == (256, 128)
    assert config.mel.top_db is None
    assert config.peak_norm_floor == pytest.approx(1e-4)


def test_override_of_unknown_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown key 'mel.bands'"):
        load_yaml(CONFIGS / "model" / "comb_2s.yaml", ModelConfig, overrides=["mel.bands=64"])


def test_override_without_equals_sign_is_rejected() -> None:
    with pytest.raises(ConfigError, match="not of the form key=value"):
        apply_overrides({}, ["head_units"], "cli")


def test_mismatched_branch_lists_are_rejected() -> None:
    with pytest.raises(ConfigError, match="model.audio"):
        from_dict(ModelConfig, {"audio": {"channels": [8, 8], "kernels": [3], "pools": [2, 2]}})


def test_an_alias_bomb_is_refused_at_once_naming_the_file(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for name, previous in zip("bcdefghij", "abcdefghi"):
        levels.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\nhop_samples: *j\n")
    with pytest.raises(ConfigError, match=r"bomb\.yaml: not valid YAML .*alias \*a is not allowed"):
        read_yaml_mapping(bomb)
    with pytest.raises(ConfigError, match="alias"):
        apply_overrides({}, ["hop_samples=*a"], "cli")
    # anchors without aliases are harmless and still read
    anchored = tmp_path / "anchored.yaml"
    anchored.write_text("hop_samples: &h 51200\n")
    assert read_yaml_mapping(anchored) == {"hop_samples": 51200}
