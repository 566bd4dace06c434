"""Window levels of real recordings, the figures behind the default ``silence_threshold_dbfs``.

    python benchmarks/silence_level.py [--data ../shared/data/real] [--json]

Every clip of the real recordings (manifest.csv: path,label,...) is cut like the stream cuts it
(2 s windows every 51200 samples; a clip shorter than a window is zero-padded to one) and each
window's level is measured as the runtime measures it (:func:`rtag.level.window_level_dbfs`:
the RMS of the loudest 2048-sample frame, in dBFS). It prints:

- target classes (label != ``_other``): the level of each clip's loudest window, whose low
  percentiles must stay above the threshold (a quiet sound of a known class is not silence);
- ``_other`` backgrounds (air conditioner hum, the room tone of the glass-break recordings, ...):
  the level of each clip's loudest window, the quietest clips, and the share of all their
  windows that the threshold calls silent, to show what real near-silence measures;
- synthetic references: digital silence and 30 s of white noise at -60 dBFS RMS, which must fall
  below the threshold;

and, for the runtime's default threshold, the share of target clips it would silence and its
margin over the -60 dBFS noise. docs/streaming.md ("Silence") quotes the output.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rtag.audio_io import load_audio
from rtag.level import window_level_dbfs
from rtag.runtime_config import RuntimeConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
RATE_HZ = 44100
WINDOW_SAMPLES = 88200
HOP_SAMPLES = 51200
NOISE_DBFS = -60.0
NOISE_S = 30.0


def window_levels_dbfs(clip: np.ndarray) -> np.ndarray:
    """The level (dBFS) of every streaming window of ``clip``."""
    if clip.shape[0] < WINDOW_SAMPLES:
        clip = np.pad(clip, (0, WINDOW_SAMPLES - clip.shape[0]))
    starts = range(0, clip.shape[0] - WINDOW_SAMPLES + 1, HOP_SAMPLES)
    return np.array([window_level_dbfs(clip[s : s + WINDOW_SAMPLES]) for s in starts])


def white_noise(rms_dbfs: float, seconds: float, seed: int = 0) -> np.ndarray:
    """Gaussian white noise with an RMS of ``rms_dbfs``."""
    samples = np.random.default_rng(seed).standard_normal(int(seconds * RATE_HZ))
    return (samples * 10.0 ** (rms_dbfs / 20.0)).astype(np.float32)


@dataclass(frozen=True)
class LevelSummary:
    """The distribution of one level per clip, in dBFS."""

    clips: int
    min_dbfs: float
    p0_1_dbfs: float
    p1_dbfs: float
    p5_dbfs: float
    p50_dbfs: float

    @classmethod
    def of(cls, levels_dbfs: np.ndarray) -> LevelSummary:
        """Summarise one level per clip."""
        percentiles = np.percentile(levels_dbfs, (0.1, 1.0, 5.0, 50.0))
        return cls(int(levels_dbfs.size), float(levels_dbfs.min()), *(float(v) for v in percentiles))

    def __str__(self) -> str:
        return (f"{self.clips:5d} clips  min {self.min_dbfs:6.1f}  p0.1 {self.p0_1_dbfs:6.1f}  "
                f"p1 {self.p1_dbfs:6.1f}  p5 {self.p5_dbfs:6.1f}  p50 {self.p50_dbfs:6.1f}")


@dataclass(frozen=True)
class ClipLevel:
    """One clip's level in dBFS, with its label (targets) or recording source and group (``_other``)."""

    level_dbfs: float
    kind: str
    path: str


@dataclass(frozen=True)
class SilenceFigures:
    """Everything the benchmark measures (see the module docstring)."""

    target_loudest_window: LevelSummary
    target_quietest_clips: list[ClipLevel]
    other_loudest_window: LevelSummary
    other_quietest_clips: list[ClipLevel]
    other_windows: int
    digital_silence_dbfs: float
    noise_minus_60_dbfs_rms_loudest_window_dbfs: float
    default_silence_threshold_dbfs: float | None
    target_share_below_default: float | None
    other_window_share_below_default: float | None

    def report(self) -> str:
        """The figures as lines of text."""
        lines = [f"target classes, loudest window (dBFS):      {self.target_loudest_window}"]
        lines += [f"    {c.level_dbfs:6.1f}  {c.kind:<24} {c.path}" for c in self.target_quietest_clips]
        lines.append(f"_other backgrounds, loudest window (dBFS):  {self.other_loudest_window}")
        lines += [f"    {c.level_dbfs:6.1f}  {c.kind:<24} {c.path}" for c in self.other_quietest_clips]
        lines.append(
            f"digital silence: {self.digital_silence_dbfs:.1f} dBFS; white noise at {NOISE_DBFS:g} dBFS RMS "
            f"({NOISE_S:g} s), loudest window: {self.noise_minus_60_dbfs_rms_loudest_window_dbfs:.1f} dBFS"
        )
        if self.default_silence_threshold_dbfs is not None and self.target_share_below_default is not None:
            lines.append(
                f"default silence_threshold_dbfs {self.default_silence_threshold_dbfs:g}: "
                f"{100 * self.target_share_below_default:.2f} % of target clips silent; "
                f"{self.default_silence_threshold_dbfs - self.noise_minus_60_dbfs_rms_loudest_window_dbfs:.1f} dB "
                f"above the {NOISE_DBFS:g} dBFS noise"
            )
        if self.other_window_share_below_default is not None:
            lines.append(
                f"    and {100 * self.other_window_share_below_default:.1f} % of the {self.other_windows} "
                f"_other windows silent"
            )
        return "\n".join(lines)


def measure(data: Path, listed_clips: int = 8) -> SilenceFigures:
    """Measure every clip of ``data``/manifest.csv and the synthetic references.

    Args:
        data: folder holding manifest.csv and the clips it names.
        listed_clips: how many of the quietest clips of each kind to list (default 8).
    """
    with open(data / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    targets: list[ClipLevel] = []
    others: list[ClipLevel] = []
    other_window_levels: list[np.ndarray] = []
    for row in rows:
        levels = window_levels_dbfs(load_audio(data / row["path"], RATE_HZ))
        if row["label"] == "_other":
            others.append(ClipLevel(round(float(levels.max()), 1), f"{row['source']} {row['group']}".strip(), row["path"]))
            other_window_levels.append(levels)
        else:
            targets.append(ClipLevel(round(float(levels.max()), 1), row["label"], row["path"]))
    targets.sort(key=lambda c: c.level_dbfs)
    others.sort(key=lambda c: c.level_dbfs)
    target_levels = np.array([c.level_dbfs for c in targets])
    threshold = RuntimeConfig().silence_threshold_dbfs
    return SilenceFigures(
        target_loudest_window=LevelSummary.of(target_levels),
        target_quietest_clips=targets[:listed_clips],
        other_loudest_window=LevelSummary.of(np.array([c.level_dbfs for c in others])),
        other_quietest_clips=others[:listed_clips],
        other_windows=int(sum(levels.size for levels in other_window_levels)),
        digital_silence_dbfs=float(window_levels_dbfs(np.zeros(int(NOISE_S * RATE_HZ), np.float32)).max()),
        noise_minus_60_dbfs_rms_loudest_window_dbfs=float(window_levels_dbfs(white_noise(NOISE_DBFS, NOISE_S)).max()),
        default_silence_threshold_dbfs=threshold,
        target_share_below_default=None if threshold is None else float(np.mean(target_levels < threshold)),
        other_window_share_below_default=(
            None if threshold is None else float(np.mean(np.concatenate(other_window_levels) < threshold))
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "real",
                        help="folder holding manifest.csv and the clips (default ../shared/data/real)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if not (args.data / "manifest.csv").is_file():
        print(f"silence_level: no manifest.csv in {args.data}", file=sys.stderr)
        return 2
    figures = measure(args.data)
    print(json.dumps(asdict(figures), indent=2) if args.json else figures.report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
