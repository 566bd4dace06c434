"""A small real corpus build: rendered clips are sound, labelled and sized as planned, the build is
byte-for-byte reproducible, the split keeps every recording source on one side, and real clips
come in with their labels. Needs fluidsynth, timidity and the Debian GM fonts: fails in CI
(CI=true) when they are missing, skips with the reason elsewhere."""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from offline.corpus import command as corpus
from offline.corpus.build import RENDER_QUALITY, plan_renders, render_choices
from offline.corpus.config import DEFAULT_FONTS, CorpusConfig
from offline.corpus.fonts import missing_requirements, read_inventory
from offline.corpus.manifest import MANIFEST_COLUMNS, read_manifest
from offline.corpus.patterns import NoteEvent, Performance
from offline.corpus.real import find_real_data, read_real_manifest
from offline.corpus.recipes import DRUM, DRUM_CHANNEL, OTHER_RECIPES, RECIPES, ClassRecipe
from offline.corpus.render import render

SMALL = CorpusConfig(
    classes=("Trumpet", "Acoustic_guitar", "Snare_drum", "Hi-hat"),
    train_clips_per_class=4,
    heldout_clips_per_class=2,
    length_s_range=(0.5, 3.0),
    other_train_clips=3,
    workers=2,
)


@pytest.fixture(scope="module", autouse=True)
def renderers() -> None:
    """Fail in CI, skip elsewhere, when a renderer or font of the default config is missing."""
    missing = missing_requirements(DEFAULT_FONTS)
    if missing:
        reason = "corpus rendering needs fluidsynth, timidity and the GM fonts: " + "; ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _build(out_dir: Path, config: CorpusConfig, real_dir: Path | None) -> list[dict[str, str]]:
    failures = corpus.build_corpus(config, out_dir, real_dir, log=lambda message: None)
    assert failures == []
    return read_manifest(out_dir / "manifest.csv")


@pytest.fixture(scope="module")
def real_dir() -> Path | None:
    return find_real_data(None, corpus.REPO_ROOT)


@pytest.fixture(scope="module")
def small_build(tmp_path_factory: pytest.TempPathFactory, real_dir: Path | None) -> tuple[Path, list[dict[str, str]]]:
    out_dir = tmp_path_factory.mktemp("corpus_a")
    return out_dir, _build(out_dir, SMALL, real_dir)


def test_default_fonts_offer_every_recipe_in_some_font_of_each_split() -> None:
    for split in ("train", "heldout"):
        inventories = [read_inventory(font) for font in DEFAULT_FONTS if font.split == split]
        for recipe in RECIPES.values():
            assert any(render_choices(recipe, inv) for inv in inventories), f"{recipe.label} has no {split} font"


def _programs(recipes: Iterable[ClassRecipe]) -> set[int]:
    return {v.program for r in recipes if r.kind != DRUM for v in r.voices}


def _drum_keys(recipes: Iterable[ClassRecipe]) -> set[int]:
    return {note for r in recipes if r.kind == DRUM for note in r.drum_notes}


def test_sounds_of_no_class_use_no_program_or_key_of_a_class() -> None:
    assert _programs(OTHER_RECIPES) and _drum_keys(OTHER_RECIPES)
    assert not _programs(OTHER_RECIPES) & _programs(RECIPES.values())
    assert not _drum_keys(OTHER_RECIPES) & _drum_keys(RECIPES.values())


def test_sounds_of_no_class_are_planned_for_training_only_as_the_negative_label() -> None:
    inventories = {font.name: read_inventory(font) for font in DEFAULT_FONTS}
    config = CorpusConfig(classes=("Trumpet",), train_clips_per_class=2, heldout_clips_per_class=1,
                          other_train_clips=len(OTHER_RECIPES) * 3, other_label="_neg")
    others = [plan for plan in plan_renders(config, inventories, {}) if plan.label == "_neg"]
    assert len(others) == config.other_train_clips
    assert {plan.split for plan in others} == {"train"}
    assert {plan.font.name for plan in others} == {font.name for font in DEFAULT_FONTS if font.split == "train"}
    for plan in others:
        assert plan.relative_path.split("/")[-2] == "_neg"
        if plan.performance.channel != DRUM_CHANNEL:
            assert plan.performance.program in _programs(OTHER_RECIPES)
    assert len({plan.relative_path for plan in others}) == len(others)
    kept_apart = CorpusConfig(classes=("Trumpet",), train_clips_per_class=2, heldout_clips_per_class=1,
                              other_as_label=False)
    assert all(plan.label == "Trumpet" for plan in plan_renders(kept_apart, inventories, {}))


def test_negative_render_count_is_range_checked() -> None:
    with pytest.raises(ValueError, match="other_train_clips"):
        CorpusConfig(other_train_clips=-1)


def test_freepats_inventory_lists_only_installed_patches() -> None:
    freepats = read_inventory(next(font for font in DEFAULT_FONTS if font.name == "freepats"))
    assert freepats.has_program(56)  # Trumpet
    assert not freepats.has_program(124)  # no Telephone patch in freepats
    assert freepats.has_drum(0, 38) and not freepats.has_drum(8, 38)


@pytest.mark.parametrize("font", DEFAULT_FONTS, ids=lambda font: font.name)
def test_render_is_mono_of_exact_length_and_not_silent(font) -> None:
    performance = Performance(0, 56, (NoteEvent(0.05, 0.5, 67, 100),), 0.8, "single")
    audio = render(performance, font, 44100)
    assert audio.dtype == np.float32 and audio.shape == (round(0.8 * 44100),)
    assert np.max(np.abs(audio[: 44100 // 2])) > 1e-3


def test_manifest_rows_match_the_files_written(small_build) -> None:
    out_dir, rows = small_build
    with open(out_dir / "manifest.csv", newline="") as handle:
        assert tuple(next(csv.reader(handle))) == MANIFEST_COLUMNS
    rendered = {row["path"] for row in rows if row["quality"] == RENDER_QUALITY}
    on_disk = {str(path.relative_to(out_dir)) for path in (out_dir / "render").rglob("*.wav")}
    assert rendered == on_disk
    per_class = SMALL.train_clips_per_class + SMALL.heldout_clips_per_class
    assert len(rendered) == len(SMALL.classes) * per_class + SMALL.other_train_clips
    for row in rows:
        assert (out_dir / row["path"]).is_file(), row["path"]
        if row["quality"] == RENDER_QUALITY:
            assert Path(row["path"]).parent.name == row["label"]


def test_rendered_clips_are_44k1_mono_pcm16_at_planned_length_and_level(small_build, real_dir) -> None:
    out_dir, rows = small_build
    backgrounds = {"train": [], "heldout": []}
    inventories = {font.name: read_inventory(font) for font in SMALL.fonts}
    planned = {plan.relative_path: plan for plan in plan_renders(SMALL, inventories, backgrounds)}
    low_db, high_db = SMALL.effects.peak_dbfs_range
    for row in rows:
        if row["quality"] != RENDER_QUALITY:
            continue
        info = sf.info(str(out_dir / row["path"]))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
        length_s = planned[row["path"]].performance.length_s
        assert SMALL.length_s_range[0] <= length_s <= SMALL.length_s_range[1]
        assert info.frames == round(length_s * 44100)
        audio, _ = sf.read(str(out_dir / row["path"]), dtype="float32")
        peak_db = 20 * np.log10(np.max(np.abs(audio)))
        assert low_db - 0.1 <= peak_db <= high_db + 0.1, row["path"]
        assert np.sqrt(np.mean(audio**2)) > 10 ** ((low_db - 40) / 20), f"{row['path']} is near silent"


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(small_build, tmp_path, real_dir) -> None:
    out_dir, rows = small_build
    _build(tmp_path / "again", SMALL, real_dir)
    assert (tmp_path / "again" / "manifest.csv").read_bytes() == (out_dir / "manifest.csv").read_bytes()
    for row in rows:
        assert (tmp_path / "again" / row["path"]).read_bytes() == (out_dir / row["path"]).read_bytes(), row["path"]
    other = CorpusConfig(**{**SMALL.__dict__, "seed": SMALL.seed + 1, "heldout_clips_per_class": 0})
    _build(tmp_path / "other", other, None)
    first = next(row["path"] for row in rows if row["quality"] == RENDER_QUALITY and row["split"] == "train")
    assert (tmp_path / "other" / first).read_bytes() != (out_dir / first).read_bytes()


def test_no_recording_source_is_on_both_sides(small_build) -> None:
    _, rows = small_build
    sides: dict[str, set[str]] = {}
    for row in rows:
        sides.setdefault(row["source"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in sides.values()), {s: v for s, v in sides.items() if len(v) > 1}
    font_split = {font.name: font.split for font in SMALL.fonts}
    for row in rows:
        if row["quality"] == RENDER_QUALITY:
            assert row["split"] == font_split[row["source"].split("/")[0]]


def test_folds_cover_training_rows_only(small_build) -> None:
    _, rows = small_build
    for row in rows:
        if row["split"] == "train":
            assert row["fold"] in {str(k) for k in range(SMALL.folds)}
        else:
            assert row["fold"] == ""


def test_real_clips_come_with_their_labels(small_build, real_dir) -> None:
    if real_dir is None:
        pytest.skip("real recordings not found: set RTAG_REAL_DATA or place them at ../shared/data/real")
    out_dir, rows = small_build
    expected = {clip.path.relative_to(real_dir).as_posix(): clip.label for clip in read_real_manifest(real_dir)
                if clip.label in {*SMALL.classes, SMALL.other_label}}
    real_rows = {row["path"].removeprefix("real/"): row for row in rows if row["path"].startswith("real/")}
    assert set(real_rows) == set(expected)
    for name, row in real_rows.items():
        assert row["label"] == expected[name]
        assert (out_dir / row["path"]).read_bytes() == (real_dir / name).read_bytes()
    assert {row["split"] for row in real_rows.values()} == {"train", "heldout"}


def test_cli_refuses_an_existing_corpus_without_force(small_build, capsys) -> None:
    out_dir, _ = small_build
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    corpus.register(subparsers)
    args = parser.parse_args(["build-corpus", "--out", str(out_dir), "--no-real"])
    assert args.func(args) == 2
    assert "use --force" in capsys.readouterr().err
