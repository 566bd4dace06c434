"""rtag: streaming real-time audio tagger.

A 1-D CNN on raw 44.1 kHz audio and a 2-D CNN on log-mel spectrograms, joined by dense layers
into one network (Lederle & Wilhelm, DCASE 2018 Task 2), with a runtime that tags microphone
audio, files and arrays.
"""

__version__ = "0.1.0"

from rtag.bundle import BundleError  # noqa: E402
from rtag.model import TaggerModel, load_model  # noqa: E402
from rtag.smoother import TagEvent  # noqa: E402
from rtag.sources import ArraySource, DeviceEvent, FileSource, MicSource  # noqa: E402
from rtag.stream import StreamTagger  # noqa: E402
from rtag.stream_results import StreamStats, WindowResult  # noqa: E402

__all__ = [
    "ArraySource",
    "BundleError",
    "DeviceEvent",
    "FileSource",
    "MicSource",
    "StreamStats",
    "StreamTagger",
    "TagEvent",
    "TaggerModel",
    "WindowResult",
    "__version__",
    "load_model",
]
