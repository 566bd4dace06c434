"""StreamTagger on replayed audio: ordering, resampling, drops, callback isolation, errors."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

import rtag
import rtag.ring_buffer
from rtag.audio_io import AudioFileError
from rtag.engines import TorchEngine
from rtag.model import TaggerModel
from rtag.monitor import ConsoleMonitor
from rtag.runtime_config import RuntimeConfig
from rtag.sinks import JsonLinesWriter
from rtag.smoother import TagEvent
from rtag.sources import ArraySource, FileSource
from rtag.stream import StreamTagger
from rtag.stream_results import WindowResult
from tests.fixtures.engines import FixedEngine, SlowEngine


def noise(seconds: float, seed: int = 0, rate_hz: int = 44100) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate_hz)) * 0.1).astype(np.float32)


def test_fast_replay_tags_every_window_in_order_with_the_models_probabilities(tiny_model: TaggerModel) -> None:
    audio = noise(3.0)
    results: list[WindowResult] = []
    fp32 = tiny_model.engine("auto", "fp32")  # the fastest fp32 engine: held to the model's own probabilities
    with rtag.StreamTagger(fp32, audio, on_window=results.append) as stream:
        stats = stream.run_for()
    hop, window = tiny_model.hop_samples, tiny_model.window_samples
    expected = (audio.shape[0] - window) // hop + 1
    assert [r.start_sample for r in results] == [i * hop for i in range(expected)]
    assert stats.windows_processed == expected and stats.windows_dropped == 0 and stats.lost_samples == 0
    batch = np.stack([audio[r.start_sample : r.start_sample + window] for r in results])
    np.testing.assert_array_equal(np.stack([r.window.audio for r in results]), batch)
    np.testing.assert_allclose(np.stack([r.probabilities for r in results]), tiny_model.predict(batch), atol=1e-5)


def test_file_at_48k_is_resampled_by_the_stream_like_a_one_shot_resample(
    tiny_model: TaggerModel, tmp_path: Path
) -> None:
    t = np.arange(int(2.0 * 48000)) / 48000
    signal = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "tone48k.wav"
    sf.write(str(path), np.stack([signal, signal], axis=1), 48000)
    results: list[WindowResult] = []
    source = FileSource(path, realtime=False, block_samples=777)
    with StreamTagger(tiny_model, source, on_window=results.append) as stream:
        stats = stream.run_for()
    reference = soxr.resample(signal, 48000, 44100, quality="HQ")
    assert stats.captured_samples == signal.shape[0] and stats.capture_rate_hz == 48000
    assert len(results) == (reference.shape[0] - tiny_model.window_samples) // tiny_model.hop_samples + 1
    for r in results[1:]:  # away from the very first samples, where the filters start up
        expected = reference[r.start_sample : r.start_sample + tiny_model.window_samples]
        np.testing.assert_allclose(r.window.audio, expected, atol=2e-3)


def test_an_array_at_16k_is_resampled_by_the_stream_and_by_tag_clip(tiny_model: TaggerModel) -> None:
    signal = noise(2.0, seed=3, rate_hz=16000)
    reference = soxr.resample(signal, 16000, 44100, quality="HQ")
    results: list[WindowResult] = []
    with StreamTagger(tiny_model, signal, sample_rate_hz=16000, on_window=results.append) as stream:
        stats = stream.run_for()
    assert stats.capture_rate_hz == 16000 and stats.captured_samples == signal.shape[0]
    assert len(results) == (reference.shape[0] - tiny_model.window_samples) // tiny_model.hop_samples + 1
    for r in results[1:]:
        expected = reference[r.start_sample : r.start_sample + tiny_model.window_samples]
        np.testing.assert_allclose(r.window.audio, expected, atol=2e-3)

    np.testing.assert_array_equal(tiny_model.tag_clip(signal, sample_rate_hz=16000), tiny_model.tag_clip(reference))
    assert not np.allclose(tiny_model.tag_clip(signal), tiny_model.tag_clip(reference))  # the rate matters
    with pytest.raises(ValueError, match="sample_rate_hz 0 Hz is outside"):
        tiny_model.tag_clip(signal, sample_rate_hz=0)
    with pytest.raises(ValueError, match="array: sample_rate_hz 5000000 Hz is outside"):
        StreamTagger(tiny_model, signal, sample_rate_hz=5_000_000)
    with pytest.raises(ValueError, match="sample_rate_hz is the rate of an array source"):
        StreamTagger(tiny_model, ArraySource(signal, 16000), sample_rate_hz=16000)


def test_slow_engine_in_real_time_drops_windows_and_counts_them(tiny_model: TaggerModel) -> None:
    engine = SlowEngine(tiny_model, delay_s=0.6)
    source = ArraySource(noise(3.0), realtime=True, block_samples=441)
    with StreamTagger(engine, source, config=RuntimeConfig(queue_windows=2)) as stream:
        stream.run_for()
    stats = stream.stats()
    assert stats.windows_dropped > 0
    assert stats.windows_processed + stats.windows_dropped == stats.windows_emitted
    assert stats.lost_samples == 0
    assert max(engine.batch_sizes) == 2  # the worker batches what is queued
    assert source.max_write_ms < 20.0


def test_lossless_replay_waits_for_a_slow_engine_instead_of_dropping(tiny_model: TaggerModel) -> None:
    engine = SlowEngine(tiny_model, delay_s=0.05)
    config = RuntimeConfig(queue_windows=1, ring_buffer_s=0.2)
    with StreamTagger(engine, noise(2.0), config=config) as stream:
        stats = stream.run_for()
    assert stats.windows_dropped == 0 and stats.lost_samples == 0
    assert stats.windows_processed == (88200 - tiny_model.window_samples) // tiny_model.hop_samples + 1


def test_raising_callback_is_isolated_and_counted(tiny_model: TaggerModel, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def flaky(result: WindowResult) -> None:
        calls.append(result.window.index)
        if result.window.index % 2 == 0:
            raise ValueError("callback failed on purpose")

    seen: list[WindowResult] = []

    class Collector:
        def on_window(self, result: WindowResult) -> None:
            seen.append(result)

    with StreamTagger(tiny_model, noise(2.0), on_window=flaky, sinks=[Collector()]) as stream:
        stream.run_for()
    stats = stream.stats()
    assert len(calls) == len(seen) == stats.windows_processed
    assert stats.callback_errors == len([i for i in calls if i % 2 == 0])
    assert "callback failed on purpose" in caplog.text


def test_slow_callback_drops_results_but_not_windows(tiny_model: TaggerModel) -> None:
    release = threading.Event()
    seen: list[int] = []

    def stuck(result: WindowResult) -> None:
        seen.append(result.window.index)
        release.wait(5.0)

    source = ArraySource(noise(2.5), realtime=True, block_samples=441)
    config = RuntimeConfig(results_queue=2)
    with StreamTagger(tiny_model, source, on_window=stuck, config=config) as stream:
        while not source.finished:
            time.sleep(0.05)
        release.set()
        stream.run_for()
    stats = stream.stats()
    assert stats.windows_dropped == 0 and stats.lost_samples == 0
    assert stats.results_dropped > 0
    assert len(seen) + stats.results_dropped == stats.windows_processed


def test_engine_error_is_raised_from_run_for(tiny_model: TaggerModel) -> None:
    engine = SlowEngine(tiny_model, delay_s=0.0, fail_after_batches=1)
    stream = StreamTagger(engine, noise(2.0))
    with pytest.raises(RuntimeError, match="engine failed on purpose"):
        with stream:
            stream.run_for()


class _RecordingEngine(TorchEngine):
    """The torch engine, noting the thread, batch size and silence of every call."""

    def __init__(self, model: TaggerModel) -> None:
        super().__init__(model, "fp32")
        self.calls: list[tuple[str, int, bool]] = []

    def predict(self, audio: np.ndarray) -> np.ndarray:
        self.calls.append((threading.current_thread().name, audio.shape[0], not audio.any()))
        return super().predict(audio)


def test_the_worker_warms_the_engine_up_on_its_own_thread_before_the_first_window(tiny_model: TaggerModel) -> None:
    engine = _RecordingEngine(tiny_model)
    results: list[WindowResult] = []
    with StreamTagger(engine, noise(3.0), on_window=results.append) as stream:
        stream.run_for()
    assert engine.calls[0] == ("rtag-worker", 1, True), "first a silent window, on the worker's thread"
    assert {thread for thread, _, _ in engine.calls} == {"rtag-worker"}
    assert sum(size for _, size, _ in engine.calls[1:]) == len(results) > 0  # then every window once
    assert not any(silent for _, _, silent in engine.calls[1:])


def test_stop_ends_the_tags_still_on(tiny_model: TaggerModel) -> None:
    events: list[TagEvent] = []
    config = RuntimeConfig(on_threshold=0.0, off_threshold=0.0)  # every tag starts and stays on
    with StreamTagger(tiny_model, noise(1.0), on_event=events.append, config=config) as stream:
        stream.run_for()
    starts = [e for e in events if e.kind == "start"]
    ends = [e for e in events if e.kind == "end"]
    assert {e.label for e in starts} == {e.label for e in ends} == set(tiny_model.labels)
    last_end = (44100 - tiny_model.window_samples) // tiny_model.hop_samples * tiny_model.hop_samples + tiny_model.window_samples
    assert all(e.sample == 0 for e in starts) and all(e.sample == last_end for e in ends)


def test_json_lines_are_complete_when_the_stream_stops(tiny_model: TaggerModel, tmp_path: Path) -> None:
    out = tmp_path / "tags.jsonl"
    config = RuntimeConfig(on_threshold=0.0, off_threshold=0.0)
    with StreamTagger(tiny_model, noise(1.5), sinks=[JsonLinesWriter(out)], config=config) as stream:
        stats = stream.run_for()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    windows = [r for r in records if r["type"] == "window"]
    events = [r for r in records if r["type"] == "event"]
    assert len(windows) == stats.windows_processed
    assert len(events) == 2 * len(tiny_model.labels)
    assert windows[1]["start_sample"] == tiny_model.hop_samples and len(windows[1]["top"]) == 3


def test_console_monitor_prints_plain_lines_when_not_a_terminal(tiny_model: TaggerModel) -> None:
    text = io.StringIO()
    with StreamTagger(tiny_model, noise(1.0), sinks=[ConsoleMonitor(top_k=2, stream=text)]) as stream:
        stats = stream.run_for()
    lines = text.getvalue().splitlines()
    assert len(lines) == stats.windows_processed
    assert all("dBFS" in line and "dropped 0 windows" in line and "\x1b" not in line for line in lines)
    assert lines[0].count(",") == 1  # two labels
    # a replay as fast as possible has no latency worth showing; labels are each window's own
    assert all("latency" not in line and "mean of" not in line for line in lines)
    smoothed = io.StringIO()
    with StreamTagger(tiny_model, noise(3.0), sinks=[ConsoleMonitor(stream=smoothed, smoothing_windows=3)]) as stream:
        last = stream.run_for()
    shown = smoothed.getvalue().splitlines()
    assert len(shown) == last.windows_processed and all("| mean of 3 windows: " in line for line in shown)


def test_console_monitor_redraws_in_place_on_a_terminal(tiny_model: TaggerModel) -> None:
    text = io.StringIO()
    with StreamTagger(tiny_model, noise(1.0), sinks=[ConsoleMonitor(top_k=3, stream=text, interactive=True)]) as s:
        s.run_for()
    assert "\x1b[4F" in text.getvalue() and "#" in text.getvalue()


def test_unreadable_file_source_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00not audio")
    with pytest.raises(AudioFileError, match="broken.wav"):
        FileSource(bad)


class BurstSource:
    """A device that delivers ``blocks`` in single writes, each once the consumer has caught up.

    A block longer than the ring buffer overflows it by a known amount.
    """

    realtime = True

    def __init__(self, blocks: list[np.ndarray], sample_rate_hz: int) -> None:
        self.blocks = blocks
        self.name = "burst"
        self.sample_rate_hz = sample_rate_hz
        self.input_overflows = 0
        self.max_write_ms = 0.0
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, ring: rtag.ring_buffer.RingBuffer) -> None:
        def run() -> None:
            for block in self.blocks:
                while ring.free_samples < ring.capacity_samples:
                    time.sleep(0.001)
                ring.write(block)
            self._done.set()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join()


@pytest.mark.parametrize("rate_hz", [44100, 48000])
def test_ring_overflow_is_counted_exactly_and_skips_the_windows_it_touches(
    tiny_model: TaggerModel, rate_hz: int
) -> None:
    ramp = np.arange(4 * rate_hz, dtype=np.float32) / (4 * rate_hz)
    quarter = rate_hz // 4
    blocks = [ramp[i * quarter : (i + 1) * quarter] for i in range(4)]  # the first second
    blocks.append(ramp[rate_hz : 3 * rate_hz])  # a 2 s burst: overflows the 0.5 s ring by 1.5 s
    blocks += [ramp[3 * rate_hz + i * quarter : 3 * rate_hz + (i + 1) * quarter] for i in range(4)]
    results: list[WindowResult] = []
    # The source writes faster than real time: a queue that holds every window keeps the worker's
    # drop-oldest policy (a slow first batch on a busy machine) out of what is measured here.
    config = RuntimeConfig(ring_buffer_s=0.5, queue_windows=64)
    with StreamTagger(tiny_model, BurstSource(blocks, rate_hz), on_window=results.append, config=config) as s:
        stats = s.run_for()
    lost = 2 * rate_hz - rate_hz // 2
    assert stats.lost_samples == lost
    assert stats.windows_dropped == 0 and stats.results_dropped == 0
    hop, window = tiny_model.hop_samples, tiny_model.window_samples
    gap_start, gap_end = 44100, round((rate_hz + lost) * 44100 / rate_hz)  # in model samples
    starts = [r.start_sample for r in results]
    touching = [s for s in range(0, 4 * 44100, hop) if s < gap_end and s + window > gap_start]
    assert not set(starts) & set(touching)
    assert stats.windows_skipped == len(touching)
    assert all(start % hop == 0 for start in starts) and starts == sorted(starts)
    assert starts[0] == 0 and starts[-1] == (4 * 44100 - window) // hop * hop
    if rate_hz == 44100:  # no resampling: every window holds exactly the samples of its position
        for r in results:
            np.testing.assert_array_equal(r.window.audio, ramp[r.start_sample : r.start_sample + window])


def test_a_source_and_a_device_together_are_refused(tiny_model: TaggerModel) -> None:
    with pytest.raises(ValueError, match="not both"):
        StreamTagger(tiny_model, noise(1.0), device="pulse")


def test_silent_windows_skip_the_engine_end_tags_and_are_delivered_as_silence(
    tiny_model: TaggerModel, tmp_path: Path
) -> None:
    rate = 44100
    quiet = (np.random.default_rng(3).standard_normal(3 * rate) * 10 ** (-60 / 20)).astype(np.float32)
    audio = np.concatenate([noise(2.0), np.zeros(3 * rate, np.float32), quiet, noise(2.0, seed=1)])
    engine = SlowEngine(tiny_model, delay_s=0.0)
    results: list[WindowResult] = []
    events: list[TagEvent] = []
    text = io.StringIO()
    out = tmp_path / "tags.jsonl"
    config = RuntimeConfig(on_threshold=0.0, off_threshold=0.0)  # any sound starts every tag
    with StreamTagger(engine, audio, on_window=results.append, on_event=events.append, config=config,
                      sinks=[JsonLinesWriter(out), ConsoleMonitor(stream=text)]) as stream:
        stats = stream.run_for()

    window = tiny_model.window_samples
    loud_until, loud_from = 2 * rate, 8 * rate
    expected_silent = [r.start_sample >= loud_until and r.start_sample + window <= loud_from for r in results]
    assert [r.silent for r in results] == expected_silent and any(expected_silent)
    assert stats.windows_silent == sum(expected_silent) and stats.windows_processed == len(results)
    assert sum(engine.batch_sizes) == len(results) - sum(expected_silent), "silent windows never reach the engine"
    for result in results:
        if result.silent:
            assert result.top() == [] and not result.probabilities.any() and result.level_dbfs < -55
        else:
            assert result.probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    # Every tag starts on the first sound, ends when silence comes, starts again on the sound after it.
    first_silent = next(r for r in results if r.silent)
    for label in tiny_model.labels:
        mine = [(e.kind, e.sample) for e in events if e.label == label]
        assert [kind for kind, _ in mine] == ["start", "end", "start", "end"]
        assert mine[0][1] == 0 and mine[1][1] == first_silent.start_sample - tiny_model.hop_samples + window
        assert loud_from - window < mine[2][1] < loud_from
    records = [json.loads(line) for line in out.read_text().splitlines() if '"window"' in line]
    assert [r["silent"] for r in records] == expected_silent
    assert all(r["top"] == [] for r in records if r["silent"])
    assert sum(line.endswith("| silence") for line in text.getvalue().splitlines()) == sum(expected_silent)


def test_other_raises_no_events_unless_report_other_is_set() -> None:
    def run(config: RuntimeConfig) -> list[TagEvent]:
        events: list[TagEvent] = []
        engine = FixedEngine(("Bark", "_other"), [0.1, 0.9])
        with StreamTagger(engine, noise(1.0), on_event=events.append, config=config) as stream:
            stream.run_for()
        return events

    assert run(RuntimeConfig()) == []
    assert [(e.label, e.kind) for e in run(RuntimeConfig(report_other=True))] == [("_other", "start"), ("_other", "end")]


def test_arrays_and_files_with_bad_samples_are_refused_by_one_rule(tiny_model: TaggerModel, tmp_path: Path) -> None:
    stereo_first = np.zeros((2, 44100), np.float32)
    with pytest.raises(ValueError, match=r"array: shaped \(2, 44100\), which looks like \[channels, N\]"):
        StreamTagger(tiny_model, stereo_first)
    assert StreamTagger(tiny_model, stereo_first.T).source.sample_rate_hz == 44100  # [N, channels] is fine
    with_nan = noise(1.0)
    with_nan[100:103] = np.nan
    with pytest.raises(ValueError, match="array: holds 3 NaN or infinite samples"):
        StreamTagger(tiny_model, with_nan)
    path = tmp_path / "nan.wav"
    sf.write(str(path), with_nan, 44100, subtype="FLOAT")
    with pytest.raises(AudioFileError, match=r"nan.wav: holds 3 NaN or infinite samples"):
        rtag.audio_io.load_audio(path)
    with pytest.raises(AudioFileError, match=r"nan.wav: holds 3 NaN or infinite samples in frames 0-200"):
        with StreamTagger(tiny_model, FileSource(path, realtime=False)) as stream:
            stream.run_for()


def _silence_then_burst(total_s: float, burst_s: float, rate_hz: int = 44100) -> np.ndarray:
    audio = np.zeros(int(total_s * rate_hz), dtype=np.float32)
    burst = int(burst_s * rate_hz)
    audio[-burst:] = 0.3 * np.random.default_rng(5).standard_normal(burst).astype(np.float32)
    return audio


def test_the_audio_after_the_last_full_window_is_tagged_in_a_padded_tail(
    tiny_model: TaggerModel, tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rtag.cli import main

    window, hop = tiny_model.window_samples, tiny_model.hop_samples
    audio = _silence_then_burst(1.3, 0.05)  # the only sound lies after the last full window (0.75-1.25 s)
    results: list[WindowResult] = []
    with StreamTagger(tiny_model.engine("auto", "fp32"), audio, on_window=results.append) as stream:
        stats = stream.run_for()
    full = (audio.shape[0] - window) // hop + 1
    assert [r.start_sample for r in results] == [i * hop for i in range(full + 1)]
    assert stats.windows_padded == 1 and stats.windows_processed == full + 1
    tail = results[-1]
    assert tail.window.padded_samples == window - (audio.shape[0] - full * hop) and tail.window.end_sample == audio.shape[0]
    assert [r.silent for r in results] == [True] * full + [False]  # the burst is heard, in the tail only
    np.testing.assert_allclose(tail.probabilities, tiny_model.predict(tail.window.audio[None])[0], atol=1e-5)

    path = tmp_path / "burst_at_the_end.wav"
    sf.write(path, audio, 44100, subtype="FLOAT")
    assert main(["tag", str(path), "--model", str(tiny_bundle), "--timeline", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == full + 1 and rows[-1]["end_s"] == pytest.approx(1.3, abs=1e-4) and not rows[-1]["silent"]
    out = tmp_path / "listen.jsonl"
    assert main(["listen", "--model", str(tiny_bundle), "--source", str(path), "--fast", "--jsonl", str(out)]) == 0
    windows = [r for r in map(json.loads, out.read_text().splitlines()) if r["type"] == "window"]
    assert [w["padded_samples"] for w in windows] == [0] * full + [tail.window.padded_samples]
    assert "1 a padded tail" in capsys.readouterr().err


def test_an_input_shorter_than_a_window_gives_one_padded_window(tiny_model: TaggerModel) -> None:
    audio = noise(0.3)
    results: list[WindowResult] = []
    with StreamTagger(tiny_model, audio, on_window=results.append) as stream:
        stats = stream.run_for()
    assert len(results) == 1 and stats.windows_padded == 1 and results[0].start_sample == 0
    padded = np.zeros(tiny_model.window_samples, np.float32)
    padded[: audio.shape[0]] = audio
    np.testing.assert_array_equal(results[0].window.audio, padded)
    assert results[0].end_s == pytest.approx(0.3, abs=1e-4)
