"""Typed configuration: frozen dataclasses loaded strictly from YAML.

Every config in rtag is a frozen dataclass. :func:`from_dict` builds one from plain data and
refuses unknown keys and wrong types with a :class:`ConfigError` that names the source file and
the dotted key, so a typo in a YAML file never passes silently. :func:`load_yaml` adds command-line
style overrides (``"model.head_units=[256,128]"``); :func:`to_dict` turns a config back into
plain data, which is what checkpoints and model bundles store.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

T = TypeVar("T")

__all__ = [
    "AudioBranchConfig",
    "ConfigError",
    "MelConfig",
    "ModelConfig",
    "SpecBranchConfig",
    "apply_overrides",
    "from_dict",
    "load_yaml",
    "parse_yaml",
    "read_yaml_mapping",
    "to_dict",
]


class ConfigError(ValueError):
    """A configuration file or mapping is invalid; the message names the source and key."""


@dataclasses.dataclass(frozen=True)
class MelConfig:
    """Log-mel spectrogram parameters (librosa conventions).

    Attributes:
        n_fft: FFT size in samples (default 2048).
        hop_samples: hop between frames in samples (default 256).
        n_mels: number of mel bands (default 128).
        fmin_hz: lowest filter edge in Hz (default 0).
        fmax_hz: highest filter edge in Hz; ``None`` means the Nyquist frequency.
        top_db: floor of the dB scale below each example's maximum (default 80 dB, librosa's
            ``power_to_db`` default); ``None`` disables the floor.
        amin: smallest power before the logarithm (default 1e-10).
    """

    n_fft: int = 2048
    hop_samples: int = 256
    n_mels: int = 128
    fmin_hz: float = 0.0
    fmax_hz: float | None = None
    top_db: float | None = 80.0
    amin: float = 1e-10


@dataclasses.dataclass(frozen=True)
class AudioBranchConfig:
    """cnn-audio feature extractor (workshop paper, Table 1).

    Each block is two 1-D convolutions (``kernels[i]`` wide, ``channels[i]`` filters, ReLU)
    followed by max pooling of ``pools[i]`` and BatchNorm.

    Attributes:
        channels: filters per block (default 32, 64, 128, 256).
        kernels: kernel width per block in samples (default 11, 9, 7, 5).
        pools: max-pool size per block (default 16 each; 8 first for the 1 s model).
        dense_units: width of the dense layer of the stand-alone classifier (default 512).
    """

    channels: tuple[int, ...] = (32, 64, 128, 256)
    kernels: tuple[int, ...] = (11, 9, 7, 5)
    pools: tuple[int, ...] = (16, 16, 16, 16)
    dense_units: int = 512


@dataclasses.dataclass(frozen=True)
class SpecBranchConfig:
    """cnn-spec feature extractor (workshop paper, Table 2).

    Each layer is a 2-D convolution (``kernels[i]`` square, ``channels[i]`` filters, ReLU), then
    an optional max pooling ``pools[i]`` as (mel, time), then BatchNorm.

    Attributes:
        channels: filters per convolution (default 64, 64, 64, 128, 128, 256, 256).
        kernels: square kernel size per convolution (default 4, 4, 4, 3, 3, 3, 3).
        pools: (mel, time) pooling after each convolution, ``None`` for none (the 1 s model has
            no pooling after the second convolution).
        dense_units: width of the dense layer of the stand-alone classifier (default 256).
    """

    channels: tuple[int, ...] = (64, 64, 64, 128, 128, 256, 256)
    kernels: tuple[int, ...] = (4, 4, 4, 3, 3, 3, 3)
    pools: tuple[tuple[int, int] | None, ...] = (
        None,
        (2, 2),
        (2, 2),
        (2, 4),
        (2, 2),
        (2, 2),
        (2, 2),
    )
    dense_units: int = 256


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of one tagging network; the defaults are the 2 s cnn-comb model.

    Attributes:
        kind: ``"audio"`` (cnn-audio), ``"spec"`` (cnn-spec) or ``"comb"`` (cnn-comb).
        sample_rate_hz: input sample rate (default 44100).
        window_samples: input length in samples (default 88200, 2 s).
        num_classes: number of output classes (default 41).
        spec_frames: width the log-mel spectrogram is resized to in time (170/300/400 for
            1/2/3 s models).
        mel: log-mel parameters.
        audio: cnn-audio feature extractor.
        spec: cnn-spec feature extractor.
        head_units: hidden dense layers of the cnn-comb head (default 512, 512, 256, 256, 128:
            the reading that gives the technical report's 3,136,649 parameters; see
            docs/architecture.md).
        head_batch_norm: BatchNorm after each hidden dense layer of the head (default true).
        peak_norm_floor: each input is divided by ``max(peak, peak_norm_floor)`` before both
            branches (default 1e-3, i.e. -60 dBFS); ``None`` disables the normalisation.
        highpass_hz: -3 dB frequency of the zero-phase rumble filter applied to each input
            before the normalisation (:class:`rtag.networks.RumbleFilter`); ``None`` (default)
            applies none.
    """

    kind: str = "comb"
    sample_rate_hz: int = 44100
    window_samples: int = 88200
    num_classes: int = 41
    spec_frames: int = 300
    mel: MelConfig = dataclasses.field(default_factory=MelConfig)
    audio: AudioBranchConfig = dataclasses.field(default_factory=AudioBranchConfig)
    spec: SpecBranchConfig = dataclasses.field(default_factory=SpecBranchConfig)
    head_units: tuple[int, ...] = (512, 512, 256, 256, 128)
    head_batch_norm: bool = True
    peak_norm_floor: float | None = 1e-3
    highpass_hz: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("audio", "spec", "comb"):
            raise ConfigError(f"model.kind must be 'audio', 'spec' or 'comb', not {self.kind!r}")
        if len(self.audio.channels) != len(self.audio.kernels) or len(self.audio.channels) != len(
            self.audio.pools
        ):
            raise ConfigError("model.audio: channels, kernels and pools must have equal lengths")
        if len(self.spec.channels) != len(self.spec.kernels) or len(self.spec.channels) != len(
            self.spec.pools
        ):
            raise ConfigError("model.spec: channels, kernels and pools must have equal lengths")
        for name in ("sample_rate_hz", "window_samples", "num_classes", "spec_frames"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be positive, not {getattr(self, name)}")
        if self.highpass_hz is not None and not 0 < self.highpass_hz < self.sample_rate_hz / 2:
            raise ConfigError(f"model.highpass_hz must lie between 0 and half the sample rate "
                              f"({self.sample_rate_hz / 2:g} Hz), not {self.highpass_hz}")

    @property
    def window_s(self) -> float:
        """Input length in seconds."""
        return self.window_samples / self.sample_rate_hz


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str, source: str) -> Any:
    """Convert plain data ``value`` to the annotated type ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, source)
            except ConfigError:
                continue
        raise ConfigError(
            f"{source}: key '{key}' expects {_type_name(tp)}, got {value!r}"
        )
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: key '{key}' expects a mapping, got {value!r}")
        return _from_mapping(tp, value, source, prefix=f"{key}.")
    if origin is tuple or origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: key '{key}' expects a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_convert(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(
                    f"{source}: key '{key}' expects {len(args)} items, got {len(value)}"
                )
            items = [_convert(a, v, f"{key}[{i}]", source) for i, (a, v) in enumerate(zip(args, value))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(item_tp, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: key '{key}' expects a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}' expects true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{key}' expects an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads "1e-3" (no dot) as a string; accept any float literal.
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: key '{key}' expects a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{key}' expects a string, got {value!r}")
        return value
    raise ConfigError(f"{source}: key '{key}' has unsupported type {_type_name(tp)}")


def _from_mapping(cls: type[T], data: Mapping[str, Any], source: str, prefix: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0]}' (known keys here: {known})"
        )
    kwargs = {name: _convert(hints[name], value, f"{prefix}{name}", source) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<dict>") -> T:
    """Build the dataclass ``cls`` from plain data, strictly.

    Args:
        cls: a (frozen) dataclass type; nested dataclasses, tuples, lists and optionals are
            converted recursively.
        data: the mapping, e.g. parsed YAML. Missing keys take the dataclass defaults.
        source: where ``data`` came from, used in error messages (a file path).

    Raises:
        ConfigError: on an unknown key, a wrong type or a failed validation; the message names
            ``source`` and the dotted key.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    return _from_mapping(cls, data, source, prefix="")


def to_dict(cfg: Any) -> Any:
    """Turn a config dataclass (recursively) into plain YAML/JSON-serialisable data."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Mapping):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], source: str) -> dict[str, Any]:
    """Return a copy of ``data`` with ``key.sub=value`` overrides applied.

    Values are parsed as YAML (``3``, ``1e-3``, ``[256, 128]``, ``null``, ``true``). The key
    must not be empty; whether it exists is checked later by :func:`from_dict`.

    Raises:
        ConfigError: for an override without ``=`` or one that descends into a non-mapping.
    """
    result: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{source}: override {item!r} is not of the form key=value")
        try:
            value = parse_yaml(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: override {item!r}: value is not valid YAML ({exc})") from None
        node = result
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"{source}: override {item!r}: '{'.'.join(parts[: depth + 1])}' is not a mapping"
                )
            node = child
        node[parts[-1]] = value
    return result


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (``*name``): a config never needs them, and nested
    aliases expand exponentially (a few hundred bytes can ask for gigabytes)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"alias *{event.anchor} is not allowed in rtag YAML files", event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


def parse_yaml(text: str) -> Any:
    """``text`` parsed like ``yaml.safe_load``, refusing aliases.

    Raises:
        yaml.YAMLError: for invalid YAML or an alias.
    """
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (an empty file gives ``{}``).

    Raises:
        ConfigError: if the file is missing or unreadable, not valid YAML, or not a mapping at
            the top level; the message names the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def load_yaml(path: str | Path, cls: type[T], overrides: Sequence[str] = ()) -> T:
    """Load the dataclass ``cls`` from a YAML file, with optional ``key=value`` overrides.

    Raises:
        ConfigError: if the file is missing or is not valid YAML, or on an unknown key or wrong
            type (the message names the file and the key).
    """
    data = read_yaml_mapping(path)
    return from_dict(cls, apply_overrides(data, overrides, str(path)), source=str(path))
