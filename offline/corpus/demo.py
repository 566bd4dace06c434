"""A short demo recording for ``rtag tag`` and ``rtag listen --file``: a few known classes in
sequence with gaps, rendered from the held-out font, with a JSON timeline of what sounds when."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from offline.corpus.build import clip_rng
from offline.corpus.config import CorpusConfig
from offline.effects import add_reverb, coloured_noise, room_impulse_response, set_peak_dbfs
from offline.corpus.patterns import perform
from offline.corpus.recipes import DRUM, RECIPES
from offline.corpus.render import render

DEMO_SEGMENTS: tuple[tuple[str, str, float], ...] = (
    ("Trumpet", "phrase", 3.0),
    ("Snare_drum", "roll", 2.0),
    ("Applause", "single", 3.0),
    ("Telephone", "repeat", 3.0),
    ("Glockenspiel", "arpeggio", 2.5),
)
"""(class, pattern, seconds) played in this order."""

DEMO_GAP_S = 1.0
DEMO_FONT = "timgm6mb"
DEMO_EVENT_THRESHOLD_DB = -40.0
"""A segment's event spans the samples within this many dB of the segment peak."""


def render_demo(config: CorpusConfig, font_name: str = DEMO_FONT,
                segments: tuple[tuple[str, str, float], ...] = DEMO_SEGMENTS,
                gap_s: float = DEMO_GAP_S) -> tuple[np.ndarray, list[dict[str, float | str]]]:
    """Render the demo: ``gap_s`` of room noise, then each segment followed by ``gap_s``.

    config: supplies the seed, sample rate and the font named ``font_name``.
    segments: (class, pattern, seconds) in order.
    Returns float32 mono audio and the timeline ``[{"label", "start_s", "end_s"}, ...]`` where
    start and end bound the samples within 40 dB of the segment's peak.
    """
    fonts = {font.name: font for font in config.fonts}
    if font_name not in fonts:
        raise ValueError(f"demo font {font_name!r} is not in the config fonts {sorted(fonts)}")
    font = fonts[font_name]
    rate = config.sample_rate_hz
    gap = np.zeros(round(gap_s * rate), dtype=np.float32)
    pieces = [gap]
    timeline: list[dict[str, float | str]] = []
    position = gap.size
    for index, (label, pattern, seconds) in enumerate(segments):
        recipe = RECIPES[label]
        rng = clip_rng(config.seed, "demo", label, index)
        program = 0 if recipe.kind == DRUM else recipe.voices[0].program
        note_range = (0, 127) if recipe.kind == DRUM else (recipe.voices[0].low_note, recipe.voices[0].high_note)
        audio = set_peak_dbfs(render(perform(recipe, program, note_range, pattern, seconds, rng), font, rate), -6.0)
        loud = np.flatnonzero(np.abs(audio) >= 10.0 ** ((DEMO_EVENT_THRESHOLD_DB - 6.0) / 20.0))
        timeline.append({"label": label, "start_s": round((position + loud[0]) / rate, 3),
                         "end_s": round((position + loud[-1] + 1) / rate, 3)})
        pieces += [audio, gap]
        position += audio.size + gap.size
    dry = np.concatenate(pieces)
    rng = clip_rng(config.seed, "demo-room")
    wet = add_reverb(dry, room_impulse_response(0.4, rate, rng), 0.15)
    noisy = wet + 10.0 ** (-60.0 / 20.0) * coloured_noise(wet.size, "pink", rng)
    return set_peak_dbfs(noisy.astype(np.float32), -3.0), timeline


def write_demo(wav_path: Path, config: CorpusConfig) -> list[dict[str, float | str]]:
    """Render the demo to ``wav_path`` (44.1 kHz 16-bit mono WAV) and its timeline to the same
    path with ``.json``; return the timeline."""
    audio, timeline = render_demo(config)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(wav_path), audio, config.sample_rate_hz, subtype="PCM_16", format="WAV")
    document = {"audio": wav_path.name, "sample_rate_hz": config.sample_rate_hz,
                "duration_s": round(audio.size / config.sample_rate_hz, 3), "font": DEMO_FONT, "events": timeline}
    wav_path.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
    return timeline
