"""The full runtime on a real audio device: a PulseAudio null sink's monitor as the microphone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtag.model import TaggerModel
from rtag.runtime_config import RuntimeConfig
from rtag.scheduler import Window
from rtag.smoother import TagEvent
from rtag.sources import DeviceError, MicSource, list_input_devices
from rtag.stream import StreamTagger
from rtag.stream_results import WindowResult
from tests.fixtures.virtual_mic import VirtualMic
from tests.fixtures.cli_runner import run_cli
from tests.fixtures.engines import SlowEngine

pytestmark = pytest.mark.device

ONSET_THRESHOLD = 0.1


def assemble_stream(windows: list[Window]) -> np.ndarray:
    """The captured stream rebuilt from its windows (zeros where no window reached)."""
    stream = np.zeros(max(w.end_sample for w in windows), dtype=np.float32)
    for window in windows:
        stream[window.start_sample : window.end_sample] = window.audio
    return stream


@pytest.mark.parametrize("capture_rate_hz", [None, 48000], ids=["native-rate", "resampled-from-48k"])
def test_played_clip_is_captured_tagged_and_timestamped(
    virtual_mic: VirtualMic,
    tiny_model: TaggerModel,
    silence_then_bark: tuple[Path, np.ndarray, int],
    capture_rate_hz: int | None,
) -> None:
    path, played, silence_samples = silence_then_bark
    results: list[WindowResult] = []
    events: list[TagEvent] = []
    source = MicSource(virtual_mic.capture_device, sample_rate_hz=capture_rate_hz)
    config = RuntimeConfig(on_threshold=0.03, off_threshold=0.025, smoothing_windows=2)
    with StreamTagger(tiny_model, source, on_window=results.append, on_event=events.append, config=config) as stream:
        stream.run_for(0.5)
        play_started_s = virtual_mic.play(path)
        stream.run_for(0.8)
    stats = stream.stats()

    # Every window was cut, tagged and delivered, in order, on the hop grid, with nothing lost.
    assert source.sample_rate_hz == (capture_rate_hz or 44100)
    assert stats.lost_samples == 0 and stats.windows_dropped == 0 and stats.windows_skipped == 0
    assert stats.windows_processed == stats.windows_emitted == len(results)
    windows = [r.window for r in results]
    assert [w.start_sample for w in windows] == [i * tiny_model.hop_samples for i in range(len(windows))]
    for result in results:
        assert result.probabilities.shape == (41,)
        # the digital silence before the bark is gated; every window holding sound is tagged
        expected = 0.0 if result.silent else 1.0
        assert result.probabilities.sum() == pytest.approx(expected, abs=1e-4)
    assert any(r.silent for r in results) and any(not r.silent for r in results)
    # Overlapping windows hold the same samples where they overlap: indices are consistent.
    overlap = tiny_model.window_samples - tiny_model.hop_samples
    for earlier, later in zip(windows, windows[1:]):
        np.testing.assert_array_equal(earlier.audio[tiny_model.hop_samples :], later.audio[:overlap])

    # The captured stream holds the played clip: find where by cross-correlation ...
    captured = assemble_stream(windows)
    bark = played[silence_samples:]
    spectrum_size = 1 << int(np.ceil(np.log2(captured.shape[0] + bark.shape[0])))
    correlation = np.fft.irfft(
        np.fft.rfft(captured, spectrum_size) * np.conj(np.fft.rfft(bark, spectrum_size)), spectrum_size
    )[: captured.shape[0]]
    bark_start = int(np.argmax(correlation))
    assert bark_start + bark.shape[0] <= captured.shape[0], "the windows cover the whole clip"
    segment = captured[bark_start : bark_start + bark.shape[0]]
    similarity = float(np.dot(segment, bark[: segment.shape[0]]) / (np.linalg.norm(segment) * np.linalg.norm(bark[: segment.shape[0]])))
    assert similarity > 0.95
    # ... and the loud onset after silence sits at the same stream sample.
    onset = int(np.flatnonzero(np.abs(captured) > ONSET_THRESHOLD)[0])
    onset_in_clip = int(np.flatnonzero(np.abs(bark) > ONSET_THRESHOLD)[0])
    assert abs(onset - (bark_start + onset_in_clip)) <= 2
    assert not np.any(np.abs(captured[: max(bark_start - 64, 0)]) > 1e-3)  # silence before it

    # Window timestamps agree with the wall clock of the playback.
    onset_window = next(w for w in windows if w.start_sample <= onset < w.end_sample)
    onset_capture_s = onset_window.capture_time_s - (onset_window.end_sample - onset) / 44100
    expected_s = play_started_s + (silence_samples + onset_in_clip) / 44100
    assert -0.05 < onset_capture_s - expected_s < 0.6
    assert 0 < stats.latency_ms_p50 < 2000

    # Events come in start/end pairs per label, all closed when the stream stopped.
    assert events, "the low thresholds must raise some tags on the random-weight model"
    for label in {e.label for e in events}:
        kinds = [e.kind for e in events if e.label == label]
        assert kinds == ["start", "end"] * (len(kinds) // 2)
    assert all(e.sample % tiny_model.hop_samples == 0 for e in events if e.kind == "start")


def test_silence_and_faint_noise_on_the_microphone_start_no_tag(
    virtual_mic: VirtualMic, tiny_model: TaggerModel, tmp_path: Path
) -> None:
    rate = 44100
    faint = np.random.default_rng(7).standard_normal(15 * rate) * 10 ** (-60 / 20)  # -60 dBFS RMS
    path = tmp_path / "silence_then_faint_noise.wav"
    sf.write(str(path), np.concatenate([np.zeros(15 * rate), faint]).astype(np.float32), rate, subtype="FLOAT")
    results: list[WindowResult] = []
    events: list[TagEvent] = []
    engine = SlowEngine(tiny_model, delay_s=0.0)
    config = RuntimeConfig(on_threshold=0.0, off_threshold=0.0)  # without the gate, any window starts every tag
    with StreamTagger(engine, MicSource(virtual_mic.capture_device), on_window=results.append,
                      on_event=events.append, config=config) as stream:
        virtual_mic.play(path, timeout_s=60.0)
        stream.run_for(0.5)
    stats = stream.stats()
    assert stats.captured_s > 30.0 and stats.lost_samples == 0
    assert len(results) > 100 and all(r.silent for r in results)
    assert max(r.level_dbfs for r in results) > -65.0  # the faint noise reached the microphone, below the gate
    assert events == [] and engine.batch_sizes == []


def test_slow_engine_drops_windows_but_never_blocks_the_device_callback(
    virtual_mic: VirtualMic, tiny_model: TaggerModel
) -> None:
    source = MicSource(virtual_mic.capture_device, block_samples=512)
    engine = SlowEngine(tiny_model, delay_s=0.7)
    config = RuntimeConfig(queue_windows=1, silence_threshold_dbfs=None)  # the idle microphone is silent
    started_s = time.monotonic()
    with StreamTagger(engine, source, config=config) as stream:
        stream.run_for(3.0)
        captured_while_running = stream.stats().captured_samples
        elapsed_s = time.monotonic() - started_s
    stats = stream.stats()
    assert stats.windows_dropped > 0
    assert stats.windows_processed + stats.windows_dropped == stats.windows_emitted
    assert stats.lost_samples == 0 and stats.input_overflows == 0
    # Capture kept pace with the clock, and no callback waited on the engine.
    assert captured_while_running > 0.8 * (elapsed_s - 0.3) * source.sample_rate_hz
    assert stats.max_capture_write_ms < 20.0


def test_unknown_device_error_lists_the_input_devices(virtual_mic: VirtualMic) -> None:
    names = [d.name for d in list_input_devices()]
    assert virtual_mic.capture_device in names
    with pytest.raises(DeviceError) as error:
        MicSource("no-such-microphone")
    message = str(error.value)
    assert "'no-such-microphone'" in message
    for name in names:
        assert name in message


def test_devices_command_lists_the_virtual_microphone(virtual_mic: VirtualMic) -> None:
    result = run_cli(["devices"], virtual_mic.env())
    assert result.returncode == 0, result.stderr
    assert any(f" {virtual_mic.capture_device}  (ALSA" in line for line in result.stdout.splitlines()), result.stdout
    as_json = run_cli(["devices", "--json"], virtual_mic.env())
    assert as_json.returncode == 0 and virtual_mic.capture_device in [d["name"] for d in json.loads(as_json.stdout)]


def test_listen_command_on_the_device_writes_windows_and_a_summary(
    virtual_mic: VirtualMic, tiny_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "stream.jsonl"
    result = run_cli(
        ["listen", "--model", str(tiny_bundle), "--device", virtual_mic.capture_device, "--duration-s", "2",
         "--jsonl", str(out)],
        virtual_mic.env(),
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    windows = [r for r in records if r["type"] == "window"]
    assert len(windows) >= 4
    assert [w["index"] for w in windows] == list(range(len(windows)))
    assert "dBFS" in result.stdout and "dropped 0 windows" in result.stdout
    assert "lost samples: 0" in result.stderr


def test_unknown_device_on_the_command_line_exits_2_listing_devices(
    virtual_mic: VirtualMic, tiny_bundle: Path
) -> None:
    result = run_cli(["listen", "--model", str(tiny_bundle), "--device", "no-such-microphone"], virtual_mic.env())
    assert result.returncode == 2
    assert "no-such-microphone" in result.stderr and virtual_mic.capture_device in result.stderr
    assert "Traceback" not in result.stderr
