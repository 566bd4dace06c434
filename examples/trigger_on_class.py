"""Do something when one class starts: here, print an alert with the stream time.

    python examples/trigger_on_class.py [--model MODEL.rtag] --label Bark
    python examples/trigger_on_class.py [--model MODEL.rtag] --label Knock --source door.wav

The event layer fires once when the smoothed probability reaches --on-threshold and re-arms
only after it fell below --off-threshold, so one bark sequence gives one alert.
"""

from __future__ import annotations

import argparse
import sys

import rtag
from rtag.runtime_config import RuntimeConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("--label", required=True, help="class to react to, e.g. Bark")
    parser.add_argument("--source", help="replay this audio file at real-time pace instead of the microphone")
    parser.add_argument("--on-threshold", type=float, default=0.5, help="start threshold (default 0.5)")
    parser.add_argument("--off-threshold", type=float, default=0.3, help="end threshold (default 0.3)")
    parser.add_argument("--duration-s", type=float, default=60.0, help="how long to listen (default 60)")
    args = parser.parse_args()

    model = rtag.load_model(args.model)
    if args.label not in model.labels:
        print(f"unknown label {args.label!r}; the model knows: {', '.join(model.labels)}", file=sys.stderr)
        return 2
    alerts: list[rtag.TagEvent] = []

    def react(event: rtag.TagEvent) -> None:
        if event.label == args.label and event.kind == "start":
            alerts.append(event)
            print(f"ALERT: {event.label} at {event.time_s:.2f} s (p={event.probability:.2f})", flush=True)

    config = RuntimeConfig(on_threshold=args.on_threshold, off_threshold=args.off_threshold)
    source = rtag.FileSource(args.source) if args.source else None
    with rtag.StreamTagger(model, source, on_event=react, config=config) as stream:
        stream.run_for(args.duration_s)
    print(f"{len(alerts)} alert(s) for {args.label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
