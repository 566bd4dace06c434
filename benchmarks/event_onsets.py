"""How early, how late and how often tag events come, on recordings with known sound times.

    python benchmarks/event_onsets.py [--data ../shared/data/real] [--clips 40] [--json]

Recordings: the demo (examples/audio/demo.wav and its timeline demo.json) and a sequence of real
clips (every n-th clip of the model's classes from the real recordings' manifest, at most 4 s
each, trimmed to the span within 40 dB of its peak, joined with 1.5 s gaps of -60 dBFS noise; the
timeline is where each clip was put). Every streaming window of both is tagged once with the
default engine; each event scheme of :data:`SCHEMES` then turns the same window probabilities
into start/end events, as the stream would. For every known sound it reports whether a start of
its label came while it sounded (a hit) and the start's error against the sound's start (event
time minus true time), and it counts starts that match no sound of their label (false starts).
The clips are timing material, not an accuracy test: some are training recordings.
docs/streaming.md ("Events") quotes the output.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtag.audio_io import load_audio
from rtag.files import file_windows
from rtag.model import load_model
from rtag.runtime_config import RuntimeConfig
from rtag.scheduler import Window
from rtag.smoother import EventTracker

REPO_ROOT = Path(__file__).resolve().parent.parent
RATE_HZ = 44100
GAP_S = 1.5
CLIP_MAX_S = 4.0
TRIM_DB = 40.0

SCHEMES: dict[str, dict[str, object]] = {
    "smoothed K=3, start at the window's start (before)": {"smoothing_windows": 3, "onset": "smoothed", "window_start": True},
    "smoothed K=3": {"smoothing_windows": 3, "onset": "smoothed"},
    "window, K=1": {"smoothing_windows": 1, "onset": "window"},
    "window, hold K=2": {"smoothing_windows": 2, "onset": "window"},
    "window, hold K=3 (default)": {"smoothing_windows": 3, "onset": "window"},
    "window, hold K=3, on 0.6": {"smoothing_windows": 3, "onset": "window", "on_threshold": 0.6},
    "window, hold K=3, on 0.7": {"smoothing_windows": 3, "onset": "window", "on_threshold": 0.7},
}


@dataclass(frozen=True)
class Sound:
    label: str
    start_s: float
    end_s: float


def trimmed(clip: np.ndarray) -> np.ndarray:
    """``clip`` from its first to its last sample within ``TRIM_DB`` of its peak."""
    loud = np.flatnonzero(np.abs(clip) >= np.abs(clip).max() * 10 ** (-TRIM_DB / 20))
    return clip[loud[0] : loud[-1] + 1]


def real_sequence(data: Path, labels: set[str], clips: int, out: Path) -> list[Sound]:
    """Write the real-clip sequence to ``out``; returns its timeline."""
    with open(data / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["label"] in labels]
    rng = np.random.default_rng(0)
    chosen = rows[:: max(1, len(rows) // clips)][:clips]
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]  # neighbours rarely share a label
    pieces, sounds, position = [], [], 0
    for row in chosen:
        clip = trimmed(load_audio(data / row["path"], RATE_HZ)[: int(CLIP_MAX_S * RATE_HZ)])
        clip = clip / max(1e-6, float(np.abs(clip).max())) * 0.5
        gap = (10 ** (-60 / 20) * rng.standard_normal(int(GAP_S * RATE_HZ))).astype(np.float32)
        pieces += [gap, clip.astype(np.float32)]
        start = position + gap.shape[0]
        sounds.append(Sound(row["label"], start / RATE_HZ, (start + clip.shape[0]) / RATE_HZ))
        position = start + clip.shape[0]
    pieces.append((10 ** (-60 / 20) * rng.standard_normal(int(GAP_S * RATE_HZ))).astype(np.float32))
    import soundfile as sf

    sf.write(out, np.concatenate(pieces), RATE_HZ, subtype="FLOAT")
    return sounds


def starts_of(windows: list[tuple[Window, np.ndarray | None]], labels: tuple[str, ...],
              config: RuntimeConfig, window_start: bool = False) -> list[tuple[str, float]]:
    """(label, time) of every start event the stream would raise on these windows under ``config``
    (``window_start``: timed at the start of the window that raised it, as rtag did before)."""
    tracker = EventTracker(labels, config)
    found = []
    for window, probs in windows:
        _, events = tracker.window(window, probs)
        found += [(e.label, window.start_s if window_start else e.time_s) for e in events if e.kind == "start"]
    return found


def score(sounds: list[Sound], starts: list[tuple[str, float]]) -> dict[str, float]:
    """Hits, onset errors and false starts of ``starts`` against ``sounds``."""
    errors, matched = [], set()
    for sound in sounds:
        hits = [(i, t) for i, (label, t) in enumerate(starts)
                if label == sound.label and sound.start_s - 2.0 <= t <= sound.end_s]
        if hits:
            index, time_s = hits[0]
            matched.add(index)
            errors.append(time_s - sound.start_s)
    error = np.asarray(errors)
    return {
        "sounds": len(sounds),
        "hits": len(errors),
        "false_starts": len(starts) - len(matched),
        "onset_error_mean_abs_s": float(np.abs(error).mean()) if error.size else float("nan"),
        "onset_error_median_s": float(np.median(error)) if error.size else float("nan"),
        "onset_error_max_abs_s": float(np.abs(error).max()) if error.size else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints a Markdown table per recording (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "real",
                        help="real-data folder with manifest.csv")
    parser.add_argument("--clips", type=int, default=40, help="real clips in the sequence (default 40)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rtag-event-onsets"), help="where the sequence is written")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    model = load_model()
    engine = model.engine()
    demo = json.loads((REPO_ROOT / "examples" / "audio" / "demo.json").read_text())
    recordings = {"demo": (REPO_ROOT / "examples" / "audio" / "demo.wav",
                           [Sound(e["label"], e["start_s"], e["end_s"]) for e in demo["events"]])}
    args.work.mkdir(parents=True, exist_ok=True)
    sequence = args.work / "real-sequence.wav"
    known = set(model.labels) - {"_other"}
    recordings["real clips"] = (sequence, real_sequence(args.data, known, args.clips, sequence))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, (path, sounds) in recordings.items():
        windows = [(window, probs) for _, window, probs in file_windows(engine, [path], progress=False)]  # type: ignore[misc]
        results[name] = {}
        for scheme, keys in SCHEMES.items():
            settings = {key: value for key, value in keys.items() if key != "window_start"}
            starts = starts_of(windows, model.labels, RuntimeConfig(**settings), bool(keys.get("window_start")))  # type: ignore[arg-type]
            results[name][scheme] = score(sounds, starts)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name, by_scheme in results.items():
        print(f"\n{name} ({next(iter(by_scheme.values()))['sounds']} sounds)\n")
        print("| scheme | hits | false starts | mean abs onset error s | median s | max abs s |")
        print("|---|---:|---:|---:|---:|---:|")
        for scheme, r in by_scheme.items():
            print(f"| {scheme} | {r['hits']} | {r['false_starts']} | {r['onset_error_mean_abs_s']:.2f} | "
                  f"{r['onset_error_median_s']:+.2f} | {r['onset_error_max_abs_s']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
