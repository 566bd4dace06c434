"""rtag: streaming real-time audio tagger.

A 1-D CNN on raw 44.1 kHz audio and a 2-D CNN on log-mel spectrograms, joined by dense layers
into one network (Lederle & Wilhelm, DCASE 2018 Task 2), with a runtime that tags microphone
audio, files and arrays.
"""

__version__ = "0.1.0"

from rtag.bundle import BundleError  # noqa: E402
from rtag.model import TaggerModel, load_model  # noqa: E402

__all__ = ["BundleError", "TaggerModel", "__version__", "load_model"]
