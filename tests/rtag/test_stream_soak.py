"""Soak: 30 minutes of real recordings through the whole streaming path as fast as it goes, with
exact window counts, no timestamp drift and flat resident memory."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtag.bench import resident_mb
from rtag.model import TaggerModel
from rtag.runtime_config import RuntimeConfig
from rtag.sources import ArraySource
from rtag.stream import StreamTagger
from rtag.stream_results import WindowResult

SOAK_S = 30 * 60
RATE_HZ = 44100
RSS_GROWTH_LIMIT_MB = 25.0


def looped_recordings(real_data: Path, manifest: list[dict[str, str]], samples: int) -> np.ndarray:
    """The real recordings one after another, looped until ``samples`` (44.1 kHz mono)."""
    out = np.empty(samples, dtype=np.float32)
    position = 0
    while position < samples:
        for row in manifest:
            audio, rate_hz = sf.read(real_data / row["path"], dtype="float32")
            assert rate_hz == RATE_HZ and audio.ndim == 1
            take = min(audio.shape[0], samples - position)
            out[position : position + take] = audio[:take]
            position += take
            if position == samples:
                break
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_thirty_minutes_of_real_audio_keep_exact_windows_times_and_flat_memory(
    tiny_model: TaggerModel, real_data: Path, real_manifest: list[dict[str, str]]
) -> None:
    total = SOAK_S * RATE_HZ
    audio = looped_recordings(real_data, real_manifest, total)
    hop, window = tiny_model.hop_samples, tiny_model.window_samples
    expected_windows = (total - window) // hop + 1
    rss_samples: list[tuple[int, float]] = []
    bad_positions: list[int] = []
    count = 0

    def check(result: WindowResult) -> None:
        nonlocal count
        w = result.window
        if w.index != count or w.start_sample != count * hop or w.start_s != w.start_sample / RATE_HZ:
            bad_positions.append(count)
        if count % 500 == 0:
            rss_samples.append((count, resident_mb()))
        count += 1

    started_s = time.monotonic()
    with StreamTagger(tiny_model, ArraySource(audio, RATE_HZ), on_window=check,
                      config=RuntimeConfig(smoothing_windows=3)) as stream:
        stats = stream.run_for()
    elapsed_s = time.monotonic() - started_s
    rss_end_mb = resident_mb()

    assert count == stats.windows_processed == stats.windows_emitted == expected_windows == 7199
    assert not bad_positions, bad_positions[:10]
    assert stats.lost_samples == 0 and stats.windows_dropped == 0 and stats.windows_skipped == 0
    assert stats.results_dropped == 0 and stats.callback_errors == 0
    assert stats.captured_samples == total
    # Memory: from the 500th window on (buffers, allocator pools and the engine warmed up).
    rss_start_mb = rss_samples[1][1]
    growth_mb = max(mb for _, mb in rss_samples[1:] + [(count, rss_end_mb)]) - rss_start_mb
    print(
        f"soak: {SOAK_S / 60:.0f} min of audio, {count} windows in {elapsed_s:.1f} s "
        f"({SOAK_S / elapsed_s:.0f}x real time); RSS at window 500 {rss_start_mb:.1f} MB, "
        f"end {rss_end_mb:.1f} MB, largest growth {growth_mb:.1f} MB; every 1000 windows: "
        + ", ".join(f"{mb:.0f}" for n, mb in rss_samples if n % 1000 == 0)
    )
    assert growth_mb < RSS_GROWTH_LIMIT_MB
