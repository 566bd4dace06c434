"""``build-corpus``: collect the real recordings, split by recording group into ``train`` and
``heldout``, join single keystrokes into typing, and render clips from sampled General MIDI
instruments as a supplement.

    python -m offline build-corpus --out /work/corpus
    python -m offline.corpus --out /tmp/small --set train_clips_per_class=4 --set "classes=[Trumpet]"
    python -m offline.corpus --demo examples/audio/demo.wav

The output folder gets ``render/`` (WAV, 44.1 kHz, mono, 16-bit), ``typing/`` (WAV, typing
sequences), ``real/`` (the real clips copied as they are, under their real-data paths),
``manifest.csv`` (``path,label,split,source,license,quality,fold``, paths relative to the folder)
and ``corpus.json`` (counts, durations, seed, config, font versions, build time).
See docs/corpus.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shutil
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from offline.corpus.build import (
    REAL_DIR,
    RENDER_DIR,
    TYPING_DIR,
    add_real_clips,
    plan_renders,
    render_all,
    write_typing,
)
from offline.corpus.config import CorpusConfig
from offline.corpus.fonts import FontError, font_provenance, read_inventory
from offline.corpus.manifest import assign_folds, summarise, write_manifest, write_summary
from offline.corpus.real import (
    RealClip,
    RealDataError,
    drop_scarce_labels,
    find_real_data,
    read_real_manifest,
    split_real_clips,
)
from offline.corpus.recipes import RECIPES
from rtag.config import ConfigError, load_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "corpus" / "default.yaml"
OUTPUT_NAMES = (RENDER_DIR, REAL_DIR, TYPING_DIR, "manifest.csv", "corpus.json")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``build-corpus`` sub-command to ``subparsers`` (sets ``func=run``)."""
    parser = subparsers.add_parser("build-corpus", help="render and collect the labelled training corpus",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``build-corpus``."""
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="corpus YAML config (default: configs/corpus/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set train_clips_per_class=10 (repeatable)")
    parser.add_argument("--out", type=Path, help="corpus output folder (outside the repository)")
    parser.add_argument("--real-data", type=Path, default=None,
                        help="real-data folder with manifest.csv (default: $RTAG_REAL_DATA, "
                             "else <repo>/../shared/data/real; skipped with a notice if absent)")
    parser.add_argument("--no-real", action="store_true", help="leave the real recordings out")
    parser.add_argument("--force", action="store_true",
                        help="replace render/, real/, manifest.csv and corpus.json in an existing --out")
    parser.add_argument("--demo", type=Path, default=None, metavar="WAV",
                        help="instead of a corpus, render the demo recording to WAV (+ .json timeline)")


def run(args: argparse.Namespace) -> int:
    """Run ``build-corpus``; 0 on success, 1 when clips failed to render, 2 on bad input."""
    try:
        config = load_yaml(args.config, CorpusConfig, args.overrides)
        if args.demo is not None:
            from offline.corpus.demo import write_demo

            timeline = write_demo(args.demo, config)
            print(f"wrote {args.demo} and {args.demo.with_suffix('.json')} ({len(timeline)} events: "
                  f"{', '.join(str(event['label']) for event in timeline)})")
            return 0
        if args.out is None:
            raise ConfigError("--out is required to build a corpus")
        real_dir = None if args.no_real else find_real_data(args.real_data, REPO_ROOT)
        if real_dir is None and not args.no_real:
            print("notice: no real-data folder found (--real-data, $RTAG_REAL_DATA, <repo>/../shared/data/real); "
                  "building from renders only", file=sys.stderr)
        failures = build_corpus(config, args.out, real_dir, force=args.force)
    except (ConfigError, FontError, RealDataError, ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


@dataclasses.dataclass(frozen=True)
class RealSelection:
    """The real clips a corpus build uses and their split.

    clips: the clips kept (wanted labels, repeated rows read once, scarce labels left out).
    splits: clip path -> ``"train"`` or ``"heldout"``, by whole recording group.
    left_out_labels: label -> clip count of the labels too scarce to keep.
    repeats: one notice per repeated manifest row.
    """

    clips: list[RealClip]
    splits: dict[Path, str]
    left_out_labels: dict[str, int]
    repeats: list[str]

    def heldout(self, label: str) -> list[RealClip]:
        """The held-out clips of ``label``, in manifest order."""
        return [clip for clip in self.clips if clip.label == label and self.splits[clip.path] == "heldout"]


def select_real_clips(config: CorpusConfig, real_dir: Path | None) -> RealSelection:
    """The real clips of ``real_dir`` (``None``: none) that a build with ``config`` uses, and their
    split; deterministic for a given real-data manifest and config (tests use it to find the
    recordings the bundled model never trained on)."""
    repeats: list[str] = []
    real_clips = read_real_manifest(real_dir, repeats) if real_dir is not None else []
    rendered_labels = config.classes or tuple(RECIPES)
    wanted = set(config.real_labels) or ({*rendered_labels, config.other_label} if config.classes else set())
    if wanted:
        real_clips = [clip for clip in real_clips if clip.label in wanted]
    real_clips, too_few = drop_scarce_labels(real_clips, config.real_min_clips, {*RECIPES, config.other_label})
    held_labels = frozenset() if config.other_as_label else frozenset({config.other_label})
    splits = split_real_clips(real_clips, config.real_heldout_fraction, config.seed, held_labels)
    return RealSelection(real_clips, splits, too_few, repeats)


def build_corpus(config: CorpusConfig, out_dir: Path, real_dir: Path | None, force: bool = False,
                 log: Callable[[str], object] = print) -> list[str]:
    """Build the corpus described by ``config`` into ``out_dir``.

    real_dir: real-data folder (with manifest.csv), or None to use renders only.
    force: replace the outputs of an earlier build in ``out_dir``; without it an existing
        output raises FileExistsError.
    log: progress printer. Default ``print``.
    Returns one message per clip that failed to render (those clips are not in the manifest;
    their count is recorded in corpus.json).
    """
    started = time.perf_counter()
    _prepare_output(out_dir, force)
    inventories = {font.name: read_inventory(font) for font in config.fonts}
    real = select_real_clips(config, real_dir)
    for message in real.repeats:
        log(f"notice: {message}")
    real_clips, real_splits, too_few = real.clips, real.splits, real.left_out_labels
    backgrounds = {split: sorted(c.path for c in real_clips
                                 if c.label == config.other_label and real_splits[c.path] == split)
                   for split in ("train", "heldout")}
    plans = plan_renders(config, inventories, backgrounds)
    log(f"rendering {len(plans)} clips with {config.workers} worker(s) into {out_dir}")
    rows, failures = render_all(plans, out_dir, config.sample_rate_hz, config.effects.fade_s, config.workers)
    render_s = time.perf_counter() - started
    keystrokes = [clip for clip in real_clips if config.typing.source and clip.source == config.typing.source]
    if keystrokes and config.typing.sequences:
        rows += write_typing(keystrokes, real_splits[keystrokes[0].path], config, out_dir)
        real_clips = [clip for clip in real_clips if clip not in keystrokes]
    if real_dir is not None:
        rows += add_real_clips(real_clips, real_splits, real_dir, out_dir, config.copy_real)
    folds = assign_folds(rows, config.folds, config.seed)
    write_manifest(rows, folds, out_dir / "manifest.csv")
    training_labels = sorted({row.label for row in rows if row.split == "train"})
    summary = summarise(rows, folds)
    summary.update({
        "seed": config.seed,
        "config": dataclasses.asdict(config),
        "fonts": [font_provenance(font, inventories[font.name]) for font in config.fonts],
        "real_data": str(real_dir) if real_dir is not None else None,
        "labels": training_labels,
        "negative_label": {"label": config.other_label,
                           "treatment": "training label" if config.other_as_label else "held-out evaluation only"},
        "left_out_labels": too_few,
        "repeated_real_rows": len(real.repeats),
        "typing": {"source": config.typing.source, "keystroke_recordings": len(keystrokes),
                   "sequences": config.typing.sequences if keystrokes else 0},
        "failed_clips": len(failures),
        "render_time_s": round(render_s, 1),
        "build_time_s": round(time.perf_counter() - started, 1),
        "software": {"python": platform.python_version(), "mido": version("mido"),
                     "numpy": version("numpy"), "soundfile": version("soundfile")},
    })
    write_summary(summary, out_dir / "corpus.json")
    log(f"wrote {len(rows)} clips ({summary['clips']}) in {summary['build_time_s']} s; "
        f"{len(failures)} failed")
    return failures


def _prepare_output(out_dir: Path, force: bool) -> None:
    existing = [out_dir / name for name in OUTPUT_NAMES if (out_dir / name).exists()]
    if existing and not force:
        raise FileExistsError(f"{out_dir}: already holds a corpus ({existing[0].name}); use --force to replace it")
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m offline.corpus [build-corpus arguments]``."""
    parser = argparse.ArgumentParser(prog="python -m offline.corpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
