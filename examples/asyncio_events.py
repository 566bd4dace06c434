"""Consume tag events in an asyncio program.

    python examples/asyncio_events.py [--model MODEL.rtag] [--source FILE] [--duration-s 20]

Callbacks run on the stream's dispatcher thread; ``loop.call_soon_threadsafe`` hands each event
to an ``asyncio.Queue`` that coroutines await like any other source of work.
"""

from __future__ import annotations

import argparse
import asyncio

import rtag


async def consume(queue: asyncio.Queue[rtag.TagEvent | None]) -> int:
    """Print events until the ``None`` sentinel; returns how many there were."""
    count = 0
    while (event := await queue.get()) is not None:
        count += 1
        print(f"[async] {event}", flush=True)
    return count


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model bundle (*.rtag); default: the bundled model")
    parser.add_argument("--config", help="runtime config YAML (thresholds, smoothing); default: built-in")
    parser.add_argument("--source", help="replay this audio file at real-time pace instead of the microphone")
    parser.add_argument("--duration-s", type=float, default=20.0, help="how long to listen (default 20)")
    args = parser.parse_args()

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[rtag.TagEvent | None] = asyncio.Queue()
    model = rtag.load_model(args.model)
    source = rtag.FileSource(args.source) if args.source else None
    stream = rtag.StreamTagger(
        model, source, on_event=lambda e: loop.call_soon_threadsafe(queue.put_nowait, e), config=args.config
    )
    consumer = asyncio.create_task(consume(queue))
    with stream:
        await asyncio.to_thread(stream.run_for, args.duration_s)
    # stop() has handed every event to the loop; the sentinel is queued behind them.
    loop.call_soon(queue.put_nowait, None)
    print(f"{await consumer} events")


if __name__ == "__main__":
    asyncio.run(main())
