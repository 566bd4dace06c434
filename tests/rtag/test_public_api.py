"""The top-level ``rtag`` names: each is the module's own object, loaded on first use, so importing
``rtag`` alone does not import torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rtag
from tests.conftest import REPO_ROOT


def test_every_public_name_is_the_defining_modules_object() -> None:
    from rtag.audio_io import load_audio
    from rtag.engines import create_engine
    from rtag.model import load_model
    from rtag.stream import StreamTagger

    assert (rtag.load_audio, rtag.create_engine, rtag.load_model, rtag.StreamTagger) == (
        load_audio, create_engine, load_model, StreamTagger)
    for name in rtag.__all__:
        assert getattr(rtag, name) is not None, name
        assert name in dir(rtag), name
    with pytest.raises(AttributeError, match="module 'rtag' has no attribute 'tagger'"):
        _ = rtag.tagger  # type: ignore[attr-defined]


def test_importing_rtag_does_not_import_torch() -> None:
    code = "import sys, rtag; print(rtag.__version__, 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stdout.split() == [rtag.__version__, "False"]
