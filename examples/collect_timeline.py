"""Collect a timeline of tags (label, start, end) for a recording, as CSV on stdout.

    python examples/collect_timeline.py [--model MODEL.rtag] recording.wav > timeline.csv
    python examples/collect_timeline.py [--model MODEL.rtag] --config my_runtime.yaml recording.wav

The file is replayed as fast as the model runs (nothing is dropped in this mode); every tag
start/end event becomes one interval.
"""

from __future__ import annotations

import argparse
import csv
import sys

import rtag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("--config", help="runtime config YAML (thresholds, smoothing); default: built-in")
    parser.add_argument("recording", help="audio file")
    args = parser.parse_args()

    model = rtag.load_model(args.model)
    opened: dict[str, rtag.TagEvent] = {}
    intervals: list[tuple[str, float, float, float]] = []

    def collect(event: rtag.TagEvent) -> None:
        if event.kind == "start":
            opened[event.label] = event
        else:
            start = opened.pop(event.label)
            intervals.append((event.label, start.time_s, event.time_s, start.probability))

    source = rtag.FileSource(args.recording, realtime=False)
    with rtag.StreamTagger(model, source, on_event=collect, config=args.config) as stream:
        stream.run_for()  # until the end of the file
    writer = csv.writer(sys.stdout)
    writer.writerow(["label", "start_s", "end_s", "start_probability"])
    for label, start_s, end_s, probability in sorted(intervals, key=lambda row: row[1]):
        writer.writerow([label, f"{start_s:.2f}", f"{end_s:.2f}", f"{probability:.3f}"])


if __name__ == "__main__":
    main()
