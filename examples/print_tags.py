"""Print the top tags of every window and each tag's start and end, from a microphone or a file.

    python examples/print_tags.py [--model MODEL.rtag]                 # default microphone
    python examples/print_tags.py [--model MODEL.rtag] --device USB    # a device by name
    python examples/print_tags.py [--model MODEL.rtag] --source dog.wav
"""

from __future__ import annotations

import argparse

import rtag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model bundle (*.rtag); default: the bundled model")
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument("--device", help="input device index or part of its name (default: system default)")
    inputs.add_argument("--source", help="replay this audio file at real-time pace instead")
    parser.add_argument("--duration-s", type=float, default=30.0, help="how long to listen (default 30)")
    args = parser.parse_args()

    model = rtag.load_model(args.model)
    source = rtag.FileSource(args.source) if args.source else None

    def show_window(result: rtag.WindowResult) -> None:
        tags = "  ".join(f"{label} {p:.2f}" for label, p in result.top(3))
        print(f"{result.start_s:7.2f}-{result.end_s:.2f} s  {result.level_dbfs:6.1f} dBFS  {tags}")

    with rtag.StreamTagger(model, source, device=args.device, on_window=show_window, on_event=print) as stream:
        stats = stream.run_for(args.duration_s)
    print(f"{stats.windows_processed} windows, {stats.windows_dropped} dropped, latency p50 {stats.latency_ms_p50:.0f} ms")


if __name__ == "__main__":
    main()
