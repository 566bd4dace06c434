"""rtag: streaming real-time audio tagger."""

__version__ = "0.1.0"
