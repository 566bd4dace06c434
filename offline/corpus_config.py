"""Configuration of the corpus builder (``python -m offline build-corpus``).

Every field has a default, so ``CorpusConfig()`` is the default corpus; ``configs/corpus/default.yaml``
spells the same values out. Ranges are ``(low, high)`` pairs.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class FontConfig:
    """One sampled instrument set used to render clips.

    name: short name used in file names and the manifest ``source`` column (``"fluidr3"``).
    backend: ``"fluidsynth"`` for a SoundFont 2 file, ``"timidity"`` for a TiMidity++ cfg
        (GUS ``.pat`` sets such as freepats).
    path: the ``.sf2`` file (fluidsynth) or the ``.cfg`` file (timidity).
    split: ``"train"`` or ``"heldout"``; every clip rendered from this font goes to that split,
        so no instrument recording is on both sides.
    license: licence of the samples, copied into every manifest row rendered from the font.
    """

    name: str
    backend: str
    path: str
    split: str
    license: str


DEFAULT_FONTS: tuple[FontConfig, ...] = (
    FontConfig(
        name="fluidr3",
        backend="fluidsynth",
        path="/usr/share/sounds/sf2/FluidR3_GM.sf2",
        split="train",
        license="MIT (Fluid R3 GM, Frank Wen; Debian fluid-soundfont-gm)",
    ),
    FontConfig(
        name="freepats",
        backend="timidity",
        path="/etc/timidity/freepats.cfg",
        split="train",
        license="GPL-2+ with composition exception (freepats; Debian freepats)",
    ),
    FontConfig(
        name="timgm6mb",
        backend="fluidsynth",
        path="/usr/share/sounds/sf2/TimGM6mb.sf2",
        split="heldout",
        license="GPL-2 (TimGM6mb, Tim Brechbill; Debian timgm6mb-soundfont)",
    ),
)


@dataclass(frozen=True)
class EffectsConfig:
    """Room, background and level applied to every rendered clip.

    peak_dbfs_range: final peak level, drawn uniformly in dBFS. Default (-30, -1).
    reverb_probability: share of clips convolved with a synthetic room response
        (exponentially decaying Gaussian noise). Default 0.6.
    reverb_rt60_s_range: reverberation time of that response in seconds. Default (0.15, 1.2).
    reverb_wet_range: level of the reverberant part relative to the dry part (linear). Default (0.05, 0.5).
    noise_probability: share of clips with added background noise. Default 0.6.
    noise_snr_db_range: signal-to-noise ratio of the background in dB (signal RMS over noise RMS).
        Default (12, 40).
    real_noise_probability: among noisy clips, the share whose background is a real ``_other``
        recording from the same split (the rest get white, pink or brown noise). Default 0.5.
    fade_s: linear fade-out at the cut end of every clip in seconds. Default 0.01.
    """

    peak_dbfs_range: tuple[float, float] = (-30.0, -1.0)
    reverb_probability: float = 0.6
    reverb_rt60_s_range: tuple[float, float] = (0.15, 1.2)
    reverb_wet_range: tuple[float, float] = (0.05, 0.5)
    noise_probability: float = 0.6
    noise_snr_db_range: tuple[float, float] = (12.0, 40.0)
    real_noise_probability: float = 0.5
    fade_s: float = 0.01


@dataclass(frozen=True)
class CorpusConfig:
    """The whole corpus build.

    seed: master seed; the same seed and config give byte-identical WAV files. Default 2018.
    sample_rate_hz: rate of every output clip. Default 44100.
    classes: labels to render; empty means every class with a render recipe
        (see ``offline.corpus_recipes.RECIPES``). Default ().
    train_clips_per_class: rendered training clips per class, spread over the train fonts. Default 90.
    heldout_clips_per_class: rendered held-out clips per class, spread over the held-out fonts.
        Default 25.
    length_s_range: clip length in seconds, drawn log-uniformly. Default (0.5, 6.0).
    fonts: sampled instrument sets and the split each belongs to.
    effects: room, background and level (see ``EffectsConfig``).
    real_heldout_fraction: target share of each label's real clips put in ``heldout``; whole
        recording sources move, so the share is approximate. Default 0.3.
    real_labels: real-clip labels to include; empty means the rendered classes plus the negative
        label (all real labels when ``classes`` is empty). Default ().
    copy_real: copy real clips into the corpus folder (True) or reference them by absolute path.
        Default True.
    other_label: the real-data label for sounds outside the 41 classes. Default "_other".
    other_as_label: keep ``other_label`` clips as an extra training label (True) or put them all
        in ``heldout`` for measuring false positives only (False). Default True.
    folds: number of cross-validation folds over the training rows. Default 5.
    workers: parallel render processes. Default 2.
    """

    seed: int = 2018
    sample_rate_hz: int = 44100
    classes: tuple[str, ...] = ()
    train_clips_per_class: int = 90
    heldout_clips_per_class: int = 25
    length_s_range: tuple[float, float] = (0.5, 6.0)
    fonts: tuple[FontConfig, ...] = DEFAULT_FONTS
    effects: EffectsConfig = field(default_factory=EffectsConfig)
    real_heldout_fraction: float = 0.3
    real_labels: tuple[str, ...] = ()
    copy_real: bool = True
    other_label: str = "_other"
    other_as_label: bool = True
    folds: int = 5
    workers: int = 2


def load_corpus_config(path: str | Path, overrides: Sequence[str] = ()) -> CorpusConfig:
    """Read a ``CorpusConfig`` from YAML, then apply ``key=value`` overrides.

    path: YAML file whose top-level keys are ``CorpusConfig`` fields.
    overrides: strings like ``"train_clips_per_class=10"`` or ``"effects.noise_probability=0"``;
        the value is parsed with ``yaml.safe_load``.
    Raises ``CorpusConfigError`` naming the file and the dotted key for an unknown key or a wrong type.
    """
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CorpusConfigError(f"{source}: cannot read config: {error}") from error
    if not isinstance(data, dict):
        raise CorpusConfigError(f"{source}: top level must be a mapping")
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise CorpusConfigError(f"{source}: override {override!r} is not key=value")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return _build(CorpusConfig, data, source, "")


class CorpusConfigError(ValueError):
    """A corpus config file or override is invalid; the message names the file and the key."""


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise CorpusConfigError(f"{source}: '{prefix or cls.__name__}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise CorpusConfigError(f"{source}: unknown key '{dotted}'")
        kwargs[key] = _convert(hints[key], value, source, dotted)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, source: str, dotted: str) -> Any:
    origin = typing.get_origin(hint)
    if is_dataclass(hint):
        return _build(hint, value, source, dotted + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise CorpusConfigError(f"{source}: '{dotted}' must be a list")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, source, f"{dotted}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise CorpusConfigError(f"{source}: '{dotted}' must have {len(args)} items")
        return tuple(_convert(a, v, source, f"{dotted}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise CorpusConfigError(f"{source}: '{dotted}' must be {hint.__name__}, got {value!r}")
    return value
