"""The corpus YAML spells out the dataclass defaults, and bad values name their field."""

from __future__ import annotations

import pytest

from offline.corpus.command import DEFAULT_CONFIG
from offline.corpus.config import CorpusConfig, EffectsConfig
from rtag.config import ConfigError, load_yaml


def test_default_yaml_equals_dataclass_defaults() -> None:
    assert load_yaml(DEFAULT_CONFIG, CorpusConfig) == CorpusConfig()


def test_overrides_reach_nested_fields() -> None:
    config = load_yaml(DEFAULT_CONFIG, CorpusConfig, ["effects.noise_probability=0", "classes=[Cello, Oboe]"])
    assert config.effects.noise_probability == 0.0 and config.classes == ("Cello", "Oboe")


def test_unknown_key_names_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"default\.yaml.*effects\.reverb"):
        load_yaml(DEFAULT_CONFIG, CorpusConfig, ["effects.reverb=1"])


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"length_s_range": (2.0, 1.0)}, "length_s_range"),
    ({"real_heldout_fraction": 1.5}, "real_heldout_fraction"),
    ({"effects": EffectsConfig(peak_dbfs_range=(-6.0, 3.0))}, "peak_dbfs_range"),
    ({"effects": EffectsConfig(noise_probability=2.0)}, "noise_probability"),
])
def test_impossible_values_name_their_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CorpusConfig(**kwargs)
