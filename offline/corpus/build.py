"""Plan and render the corpus: rendered clips per class and split, plus the real recordings.

Every rendered clip gets its own random generator seeded from (seed, split, label, index), so the
plan and the audio do not depend on the number of workers or on the other classes built.
"""

from __future__ import annotations

import functools
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from offline.corpus.config import CorpusConfig, FontConfig
from offline.effects import (
    NOISE_COLOURS,
    add_background,
    add_reverb,
    coloured_noise,
    fade_out,
    loop_to_length,
    room_impulse_response,
    set_peak_dbfs,
)
from offline.corpus.fonts import FontInventory
from offline.corpus.keystrokes import load_keystrokes, typing_sequence
from offline.corpus.patterns import Performance, perform
from offline.corpus.real import RealClip
from offline.corpus.recipes import ACOUSTIC_DRUM_KITS, DRUM, OTHER_RECIPES, RECIPES, ClassRecipe
from offline.corpus.render import RenderError, render
from rtag.audio_io import AudioFileError, load_audio

SPLITS = ("train", "heldout")
RENDER_DIR = "render"
REAL_DIR = "real"
TYPING_DIR = "typing"
RENDER_QUALITY = "rendered"
"""Manifest ``quality`` of rendered clips (real clips keep strong/weak/synthetic)."""
TYPING_QUALITY = "joined"
"""Manifest ``quality`` of typing sequences joined from real key recordings."""


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render and post-process one clip, fixed before rendering starts.

    relative_path: output path relative to the corpus folder.
    label, split: manifest label and split.
    font: the instrument set; source: manifest source id (``font/program`` or ``font/kit``).
    performance: the notes to render.
    reverb_rt60_s: room reverberation time, or None for a dry clip; reverb_wet: wet/dry RMS ratio.
    background: ``"white"``, ``"pink"``, ``"brown"``, ``"real"`` or None;
    background_path: the real ``_other`` recording for ``"real"``; background_offset_samples: where to start in it.
    snr_db: signal-to-background ratio; peak_dbfs: final peak level.
    effects_seed: seed of the room response and coloured noise.
    """

    relative_path: str
    label: str
    split: str
    font: FontConfig
    source: str
    performance: Performance
    reverb_rt60_s: float | None
    reverb_wet: float
    background: str | None
    background_path: str | None
    background_offset_samples: int
    snr_db: float
    peak_dbfs: float
    effects_seed: int


@dataclass(frozen=True)
class Row:
    """One manifest row (``fold`` is filled in later for training rows)."""

    path: str
    label: str
    split: str
    source: str
    license: str
    quality: str
    duration_s: float


def clip_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator seeded from ``seed`` and ``keys`` with a stable (process-independent) hash."""
    words = [seed] + [zlib.crc32(k.encode()) if isinstance(k, str) else k for k in keys]
    return np.random.default_rng(words)


def render_choices(recipe: ClassRecipe, inventory: FontInventory) -> list[tuple[int, tuple[int, int]]]:
    """(program or kit, note range) pairs ``inventory`` can play for ``recipe``; empty if none."""
    if recipe.kind == DRUM:
        return [(kit, (0, 127)) for kit in ACOUSTIC_DRUM_KITS
                if all(inventory.has_drum(kit, note) for note in recipe.drum_notes)]
    return [(v.program, (v.low_note, v.high_note)) for v in recipe.voices if inventory.has_program(v.program)]


def plan_renders(config: CorpusConfig, inventories: dict[str, FontInventory],
                 backgrounds: dict[str, list[Path]]) -> list[ClipPlan]:
    """Plan every rendered clip.

    inventories: font name -> presets, for every font in ``config.fonts``.
    backgrounds: split -> real negative recordings usable as background in that split.
    Clips of a class in a split are spread round-robin over the fonts of that split that can
    play the class; within a font the program (or kit) is drawn at random.
    Raises ValueError for an unknown class name.
    """
    labels = config.classes or tuple(RECIPES)
    unknown = [label for label in labels if label not in RECIPES]
    if unknown:
        raise ValueError(f"classes: no render recipe for {unknown}; known: {sorted(RECIPES)}")
    counts = {"train": config.train_clips_per_class, "heldout": config.heldout_clips_per_class}
    plans = []
    for split in SPLITS:
        fonts = [font for font in config.fonts if font.split == split]
        for label in labels:
            recipe = RECIPES[label]
            usable = [(recipe, font, choices) for font in fonts
                      if (choices := render_choices(recipe, inventories[font.name]))]
            if not usable and counts[split] > 0:
                raise ValueError(f"{label}: no {split} font can render it "
                                 f"(fonts: {[f.name for f in fonts]})")
            plans += _round_robin(config, usable, split, label, counts[split], backgrounds.get(split, []))
    if config.other_as_label:
        plans += _plan_other_renders(config, inventories, backgrounds.get("train", []))
    return plans


def _plan_other_renders(config: CorpusConfig, inventories: dict[str, FontInventory],
                        backgrounds: list[Path]) -> list[ClipPlan]:
    """``config.other_train_clips`` training renders labelled ``config.other_label``, spread
    round-robin over the (recipe, train font) pairs where the font can play the recipe."""
    recipes = [replace(recipe, label=config.other_label) for recipe in OTHER_RECIPES]
    usable = [(recipe, font, choices) for recipe in recipes for font in config.fonts if font.split == "train"
              if (choices := render_choices(recipe, inventories[font.name]))]
    if not usable and config.other_train_clips > 0:
        raise ValueError(f"other_train_clips: no train font can render a sound of no class "
                         f"(fonts: {[f.name for f in config.fonts if f.split == 'train']})")
    return _round_robin(config, usable, "train", config.other_label, config.other_train_clips, backgrounds)


def _round_robin(config: CorpusConfig, usable: list[tuple[ClassRecipe, FontConfig, list[tuple[int, tuple[int, int]]]]],
                 split: str, label: str, count: int, backgrounds: list[Path]) -> list[ClipPlan]:
    """``count`` clips of ``label`` in ``split``, clip ``i`` from ``usable[i % len(usable)]``
    (recipe, font, its choices) and the generator seeded (seed, split, label, i)."""
    plans = []
    for index in range(count):
        recipe, font, choices = usable[index % len(usable)]
        rng = clip_rng(config.seed, split, label, index)
        plans.append(_plan_clip(config, recipe, split, index, font, choices, backgrounds, rng))
    return plans


def _plan_clip(config: CorpusConfig, recipe: ClassRecipe, split: str, index: int, font: FontConfig,
               choices: list[tuple[int, tuple[int, int]]], backgrounds: list[Path],
               rng: np.random.Generator) -> ClipPlan:
    effects = config.effects
    program, note_range = choices[int(rng.integers(len(choices)))]
    low_s, high_s = config.length_s_range
    length_s = round(float(np.exp(rng.uniform(np.log(low_s), np.log(high_s)))), 3)
    pattern = str(rng.choice(recipe.patterns))
    performance = perform(recipe, program, note_range, pattern, length_s, rng)
    reverb = rng.random() < effects.reverb_probability
    background: str | None = None
    background_path: str | None = None
    if rng.random() < effects.noise_probability:
        if backgrounds and rng.random() < effects.real_noise_probability:
            background, background_path = "real", str(backgrounds[int(rng.integers(len(backgrounds)))])
        else:
            background = str(rng.choice(sorted(NOISE_COLOURS)))
    kind = "kit" if recipe.kind == DRUM else "p"
    return ClipPlan(
        relative_path=f"{RENDER_DIR}/{split}/{recipe.label}/{font.name}_{index:04d}.wav",
        label=recipe.label,
        split=split,
        font=font,
        source=f"{font.name}/{kind}{program:03d}",
        performance=performance,
        reverb_rt60_s=float(rng.uniform(*effects.reverb_rt60_s_range)) if reverb else None,
        reverb_wet=float(rng.uniform(*effects.reverb_wet_range)),
        background=background,
        background_path=background_path,
        background_offset_samples=int(rng.integers(0, 10 * config.sample_rate_hz)),
        snr_db=float(rng.uniform(*effects.noise_snr_db_range)),
        peak_dbfs=float(rng.uniform(*effects.peak_dbfs_range)),
        effects_seed=int(rng.integers(2**31)),
    )


@functools.lru_cache(maxsize=32)
def _background_audio(path: str, sample_rate_hz: int) -> np.ndarray:
    try:
        return load_audio(path, sample_rate_hz)
    except AudioFileError as error:
        raise RenderError(str(error)) from None


def render_clip(plan: ClipPlan, sample_rate_hz: int, fade_s: float) -> np.ndarray:
    """Render ``plan`` and apply its room, background and level; float32 mono in [-1, 1]."""
    audio = render(plan.performance, plan.font, sample_rate_hz)
    rng = np.random.default_rng(plan.effects_seed)
    if plan.reverb_rt60_s is not None:
        predelay_s = float(rng.uniform(0.0, 0.03))
        response = room_impulse_response(plan.reverb_rt60_s, sample_rate_hz, rng, predelay_s)
        audio = add_reverb(audio, response, plan.reverb_wet)
    if plan.background == "real" and plan.background_path is not None:
        source = _background_audio(plan.background_path, sample_rate_hz)
        audio = add_background(audio, loop_to_length(source, audio.size, plan.background_offset_samples),
                               plan.snr_db)
    elif plan.background is not None:
        audio = add_background(audio, coloured_noise(audio.size, plan.background, rng), plan.snr_db)
    audio = fade_out(audio, round(fade_s * sample_rate_hz))
    return set_peak_dbfs(audio, plan.peak_dbfs)


def _render_to_file(plan: ClipPlan, out_dir: Path, sample_rate_hz: int, fade_s: float) -> str | None:
    """Worker entry point: render one clip to its WAV; return an error message or None."""
    try:
        audio = render_clip(plan, sample_rate_hz, fade_s)
    except (RenderError, ValueError, OSError) as error:
        return f"{plan.relative_path}: {error}"
    path = out_dir / plan.relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sample_rate_hz, subtype="PCM_16", format="WAV")
    return None


def render_all(plans: list[ClipPlan], out_dir: Path, sample_rate_hz: int, fade_s: float,
               workers: int) -> tuple[list[Row], list[str]]:
    """Render ``plans`` with ``workers`` processes; return manifest rows of the clips written and
    one message per failed clip (a failed clip is reported, not written)."""
    arguments = ([out_dir] * len(plans), [sample_rate_hz] * len(plans), [fade_s] * len(plans))
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            errors = list(pool.map(_render_to_file, plans, *arguments, chunksize=4))
    else:
        errors = [_render_to_file(plan, out_dir, sample_rate_hz, fade_s) for plan in plans]
    rows = [Row(plan.relative_path, plan.label, plan.split, plan.source, plan.font.license, RENDER_QUALITY,
                plan.performance.length_s)
            for plan, error in zip(plans, errors) if error is None]
    return rows, [error for error in errors if error is not None]


def add_real_clips(clips: list[RealClip], splits: dict[Path, str], real_dir: Path, out_dir: Path,
                   copy: bool) -> list[Row]:
    """Manifest rows for real clips, copying each into ``out_dir/real/`` under its path relative to
    ``real_dir`` when ``copy`` is True (else the row holds the absolute path)."""
    rows = []
    for clip in clips:
        if copy:
            relative = clip.path.relative_to(real_dir)
            target = out_dir / REAL_DIR / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip.path, target)
            path = f"{REAL_DIR}/{relative.as_posix()}"
        else:
            path = str(clip.path.resolve())
        rows.append(Row(path, clip.label, splits[clip.path], clip.source, clip.license, clip.quality,
                        round(sf.info(str(clip.path)).duration, 3)))
    return rows


def write_typing(clips: list[RealClip], split: str, config: CorpusConfig, out_dir: Path) -> list[Row]:
    """Join the single key recordings ``clips`` (one recording group, assigned ``split``) into
    ``config.typing.sequences`` typing sequences under ``out_dir/typing/``; their manifest rows."""
    typing = config.typing
    keys = load_keystrokes([clip.path for clip in clips], config.sample_rate_hz)
    first = clips[0]
    rows = []
    for index in range(typing.sequences):
        audio = typing_sequence(keys, typing, config.sample_rate_hz, clip_rng(config.seed, "typing", index))
        relative = f"{TYPING_DIR}/{typing.source.replace('/', '_')}_{index:04d}.wav"
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio, config.sample_rate_hz, subtype="PCM_16", format="WAV")
        rows.append(Row(relative, first.label, split, first.source, first.license, TYPING_QUALITY,
                        round(audio.size / config.sample_rate_hz, 3)))
    return rows
