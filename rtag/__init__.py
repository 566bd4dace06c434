"""rtag: streaming real-time audio tagger.

A 1-D CNN on raw 44.1 kHz audio and a 2-D CNN on log-mel spectrograms, joined by dense layers
into one network (Lederle & Wilhelm, DCASE 2018 Task 2), with a runtime that tags microphone
audio, files and arrays.

The public names below are imported on first use, so ``import rtag`` (and the command line's
start, ``rtag --version``) does not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ArraySource": "rtag.sources",
    "BundleError": "rtag.bundle",
    "DeviceEvent": "rtag.sources",
    "FileSource": "rtag.sources",
    "MicSource": "rtag.sources",
    "StreamStats": "rtag.stream_results",
    "StreamTagger": "rtag.stream",
    "TagEvent": "rtag.smoother",
    "TagRow": "rtag.files",
    "TaggerModel": "rtag.model",
    "WindowResult": "rtag.stream_results",
    "create_engine": "rtag.engines",
    "load_audio": "rtag.audio_io",
    "load_model": "rtag.model",
}

if TYPE_CHECKING:
    from rtag.audio_io import load_audio as load_audio
    from rtag.bundle import BundleError as BundleError
    from rtag.engines import create_engine as create_engine
    from rtag.files import TagRow as TagRow
    from rtag.model import TaggerModel as TaggerModel
    from rtag.model import load_model as load_model
    from rtag.smoother import TagEvent as TagEvent
    from rtag.sources import ArraySource as ArraySource
    from rtag.sources import DeviceEvent as DeviceEvent
    from rtag.sources import FileSource as FileSource
    from rtag.sources import MicSource as MicSource
    from rtag.stream import StreamTagger as StreamTagger
    from rtag.stream_results import StreamStats as StreamStats
    from rtag.stream_results import WindowResult as WindowResult

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rtag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
