"""Audio sources: the only code that touches audio devices or audio files.

Every source writes mono float32 samples at its own rate into a :class:`~rtag.ring_buffer.RingBuffer`;
the stream resamples them to the model rate afterwards, so a microphone, a file replay and a
numpy array all take the same path.

- :class:`MicSource`: a real ``sounddevice.InputStream`` opened at the device's native rate.
  Its callback only copies into the ring buffer (no allocation of sample arrays, no model, no
  printing). A device that disappears (unplugged, its sound server gone) is reported as a
  :class:`DeviceEvent`, reopened with backoff until it returns, and the time it was away is
  counted as lost samples, so stream positions after the gap stay true to the wall clock.
- :class:`FileSource`: replays an audio file at real-time pace, or as fast as the pipeline takes
  it (``realtime=False``: the replay waits for ring-buffer space, so nothing is lost).
- :class:`ArraySource`: the same for samples already in memory (tests, embedding).

``sounddevice`` is imported only when a device is used: PortAudio enumerates devices once, at
import, so the audio environment must be set up before then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rtag.audio_io import AudioFileError, open_sound_file, rate_problem
from rtag.ring_buffer import RingBuffer

__all__ = [
    "ArraySource",
    "DeviceError",
    "DeviceEvent",
    "FileSource",
    "InputDevice",
    "MicSource",
    "NoInputDeviceError",
    "Source",
    "list_input_devices",
    "resolve_input_device",
]


logger = logging.getLogger("rtag.stream")

FIRST_BLOCK_TIMEOUT_S = 5.0  # a freshly opened stream may take this long to deliver its first block
STANDARD_RATES_HZ = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)
MAX_CHANNELS = 32  # a 2-D array with at most this many rows and more columns is taken as [channels, N] and refused


class DeviceError(ValueError):
    """An audio input device cannot be used; the message names it and lists the input devices."""


class NoInputDeviceError(DeviceError):
    """The system has no audio input device."""


@runtime_checkable
class Source(Protocol):
    """Something that writes mono audio into a ring buffer.

    Attributes:
        name: what is being captured (device or file name), for messages.
        sample_rate_hz: rate of the samples written.
        realtime: ``True`` when samples arrive at the pace of time (a microphone, a paced
            replay); the pipeline then drops work rather than wait. ``False`` for as-fast-as-
            possible replay: every stage waits instead, and nothing is dropped.
        input_overflows: overflows reported by the audio device (0 for replays).
        max_write_ms: longest time one callback or replay step spent writing into the ring.
        error: the exception that ended capture, if any.
        device_losses: times the audio device was lost (0 for replays).
        gap_samples: samples never captured while the device was away (counted as lost).
        connected: whether capture is running now (``False`` while a lost device is retried).
        on_device_event: called with each :class:`DeviceEvent` (set by the stream; ``None``:
            events are only logged).

    The last four are optional for sources that have no device: the stream then reads 0, 0,
    ``True`` and sets ``on_device_event`` without using it.
    """

    name: str
    sample_rate_hz: int
    realtime: bool
    input_overflows: int
    max_write_ms: float
    error: BaseException | None
    device_losses: int
    gap_samples: int
    connected: bool
    on_device_event: Callable[[DeviceEvent], object] | None

    def start(self, ring: RingBuffer) -> None:
        """Begin writing into ``ring``."""
        ...

    def stop(self) -> None:
        """Stop writing and release the device or file."""
        ...

    @property
    def finished(self) -> bool:
        """True once no more samples will come (end of file, or an error)."""
        ...


@dataclass(frozen=True)
class DeviceEvent:
    """A change in an audio input device's state.

    Attributes:
        kind: ``"lost"`` (its stream ended or stalled), ``"retry_failed"`` (reopening failed;
            the next attempt follows after ``retry_in_s``) or ``"restored"`` (capture resumed).
        device: the device name.
        time_s: ``time.monotonic()`` when it happened.
        sample: stream position at the source rate: for ``"lost"`` the first sample not
            captured, for ``"restored"`` the first sample captured again.
        gap_samples: for ``"restored"``, the samples the device was away (counted as lost).
        attempt: reopening attempts so far since the loss (0 for ``"lost"``).
        retry_in_s: for ``"retry_failed"``, the wait before the next attempt.
        message: what happened, for people.
    """

    kind: str
    device: str
    time_s: float
    sample: int
    gap_samples: int = 0
    attempt: int = 0
    retry_in_s: float = 0.0
    message: str = ""

    def __str__(self) -> str:
        return f"input device {self.device!r} {self.kind}: {self.message}"


@dataclass(frozen=True)
class InputDevice:
    """An audio input device as PortAudio reports it.

    Attributes:
        index: PortAudio device index.
        name: device name.
        host_api: host API name (ALSA, Core Audio, WASAPI, ...).
        max_input_channels: input channels the device offers.
        default_sample_rate_hz: the device's native rate.
        is_default: whether it is the default input device.
    """

    index: int
    name: str
    host_api: str
    max_input_channels: int
    default_sample_rate_hz: float
    is_default: bool

    def __str__(self) -> str:
        mark = "*" if self.is_default else " "
        return (
            f"{mark} {self.index:>3}  {self.name}  ({self.host_api}, {self.max_input_channels} in, "
            f"{self.default_sample_rate_hz:.0f} Hz)"
        )


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # libportaudio missing
        raise DeviceError(f"cannot use audio devices: PortAudio is not available ({exc})") from None
    return sounddevice


def list_input_devices() -> list[InputDevice]:
    """All devices with at least one input channel, default first marked ``is_default``."""
    sd = _sounddevice()
    default_input = sd.default.device[0]
    if default_input is None or default_input < 0:
        try:
            default_input = sd.query_devices(kind="input")["index"]
        except sd.PortAudioError:
            default_input = -1
    host_apis = sd.query_hostapis()
    devices = []
    for info in sd.query_devices():
        if info["max_input_channels"] <= 0:
            continue
        devices.append(
            InputDevice(
                index=int(info["index"]),
                name=str(info["name"]),
                host_api=str(host_apis[info["hostapi"]]["name"]),
                max_input_channels=int(info["max_input_channels"]),
                default_sample_rate_hz=float(info["default_samplerate"]),
                is_default=int(info["index"]) == default_input,
            )
        )
    return devices


def _device_listing(devices: list[InputDevice]) -> str:
    return "input devices:\n" + "\n".join(str(d) for d in devices)


def resolve_input_device(device: int | str | None = None) -> InputDevice:
    """Find an input device by index, by (case-insensitive) name substring, or the default.

    Args:
        device: a PortAudio index (int or digit string), a part of the device name, or ``None``
            for the default input device.

    Raises:
        NoInputDeviceError: the system has no input device at all.
        DeviceError: ``device`` matches no input device, or a name matches several; the message
            lists the input devices.
    """
    devices = list_input_devices()
    if not devices:
        raise NoInputDeviceError(
            "no audio input device found; replay a file instead with --source FILE "
            "(or rtag.FileSource in Python)"
        )
    if device is None:
        for candidate in devices:
            if candidate.is_default:
                return candidate
        return devices[0]
    if isinstance(device, int) or (isinstance(device, str) and device.strip().isdigit()):
        index = int(device)
        for candidate in devices:
            if candidate.index == index:
                return candidate
        raise DeviceError(f"no input device with index {index}; {_device_listing(devices)}")
    wanted = device.lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    if exact:
        return exact[0]
    matches = [d for d in devices if wanted in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(f"no input device matches {device!r}; {_device_listing(devices)}")
    raise DeviceError(
        f"{device!r} matches {len(matches)} input devices; give an index or a longer name; "
        f"{_device_listing(matches)}"
    )


class MicSource:
    """Capture from an audio input device with a real ``sounddevice.InputStream``.

    If the device goes away while capturing (its stream ends, or no block arrives for
    ``stall_timeout_s``), a ``"lost"`` :class:`DeviceEvent` is reported and the device is
    reopened every ``retry_initial_s``, doubling up to ``retry_max_s``, until it returns or the
    source is stopped (``"retry_failed"`` events in between). When capture resumes, the wall time
    it was away is skipped in the ring buffer (:meth:`~rtag.ring_buffer.RingBuffer.skip`): the
    stream counts those samples as lost and its later positions stay true, and a ``"restored"``
    event gives the gap.

    Args:
        device: PortAudio index, part of the device name, or ``None`` for the default input.
        input_channels: device channels to open and average to mono (default 1: the first
            channel only).
        block_samples: frames per callback at the device rate (default 200, which divides the
            2 s model's window and hop at 44.1 kHz; see RuntimeConfig.capture_block_samples).
        sample_rate_hz: capture rate; ``None`` (default) opens the device at its native rate
            (the stream resamples to the model rate with soxr).
        reconnect: reopen a lost device (default ``True``); ``False`` ends capture with a
            :class:`DeviceError` in :attr:`error` instead.
        retry_initial_s: first wait before reopening a lost device (default 0.1 s).
        retry_max_s: longest wait between reopening attempts (default 2 s).
        stall_timeout_s: a running stream that delivers no block for this long is treated as
            lost (default 1 s); a freshly opened one gets ``FIRST_BLOCK_TIMEOUT_S`` (5 s) for
            its first block.

    Raises:
        DeviceError, NoInputDeviceError: see :func:`resolve_input_device`; also when the device
            has fewer than ``input_channels`` channels.
    """

    realtime = True

    def __init__(
        self,
        device: int | str | None = None,
        *,
        input_channels: int = 1,
        block_samples: int = 200,
        sample_rate_hz: int | None = None,
        reconnect: bool = True,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 2.0,
        stall_timeout_s: float = 1.0,
    ) -> None:
        self.device = resolve_input_device(device)
        if not 1 <= input_channels <= self.device.max_input_channels:
            raise DeviceError(
                f"input device {self.device.name!r} has {self.device.max_input_channels} input "
                f"channels; cannot open {input_channels}"
            )
        if not 0 < retry_initial_s <= retry_max_s or stall_timeout_s <= 0:
            raise ValueError("need 0 < retry_initial_s <= retry_max_s and stall_timeout_s > 0")
        self.name = self.device.name
        self.sample_rate_hz = int(sample_rate_hz or round(self.device.default_sample_rate_hz))
        self.input_channels = input_channels
        self.block_samples = block_samples
        self.reconnect = reconnect
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.stall_timeout_s = stall_timeout_s
        self.input_overflows = 0
        self.max_write_ms = 0.0
        self.error: BaseException | None = None
        self.device_losses = 0
        self.gap_samples = 0
        self.on_device_event: Callable[[DeviceEvent], object] | None = None
        self._ring: RingBuffer | None = None
        self._stream: Any = None
        self._stream_ended = threading.Event()  # set by PortAudio when the open stream ends
        self._stop = threading.Event()
        self._done = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._last_block_s = 0.0  # monotonic time of the latest block's last sample
        self._awaiting_first_block = True
        self._resume_from_s: float | None = None  # set while a lost device is being reopened
        self._restored: DeviceEvent | None = None  # made by the callback, reported by the watchdog

    @property
    def connected(self) -> bool:
        """True while the device stream is open and capturing."""
        return self._stream is not None and self._resume_from_s is None and not self._done.is_set()

    def start(self, ring: RingBuffer) -> None:
        """Open the device stream, begin copying its blocks into ``ring``, and watch the device.

        Raises:
            DeviceError: if PortAudio refuses to open or start the stream (the message names the
                device, the rate and the standard rates it accepts).
        """
        self._ring = ring
        try:
            self._open(describe_rates=True)
        except DeviceError:
            self._done.set()
            raise
        self._last_block_s = time.monotonic()
        self._watchdog = threading.Thread(target=self._watch, name="rtag-device", daemon=True)
        self._watchdog.start()

    def _open(self, describe_rates: bool = False) -> None:
        """Open and start the device stream; a failure names the device (and, with
        ``describe_rates``, the rates it accepts)."""
        sd = _sounddevice()
        self._stream_ended.clear()
        self._awaiting_first_block = True
        try:
            stream = sd.InputStream(
                device=self.device.index,
                channels=self.input_channels,
                samplerate=self.sample_rate_hz,
                blocksize=self.block_samples,
                dtype="float32",
                callback=self._callback,
                finished_callback=self._stream_ended.set,
            )
        except sd.PortAudioError as exc:
            raise DeviceError(self._open_failure(exc, describe_rates)) from None
        try:
            stream.start()
        except sd.PortAudioError as exc:
            stream.close(ignore_errors=True)
            raise DeviceError(self._open_failure(exc, describe_rates)) from None
        self._stream = stream

    def _open_failure(self, exc: Exception, describe_rates: bool) -> str:
        message = (
            f"cannot open input device {self.device.index} {self.device.name!r} at "
            f"{self.sample_rate_hz} Hz with {self.input_channels} channel(s): {exc}"
        )
        return f"{message}; {self._supported_rates()}" if describe_rates else message

    def _supported_rates(self) -> str:
        sd = _sounddevice()
        rates = []
        for rate_hz in STANDARD_RATES_HZ:
            try:
                sd.check_input_settings(device=self.device.index, channels=self.input_channels, samplerate=rate_hz)
            except (sd.PortAudioError, ValueError):
                continue
            rates.append(str(rate_hz))
        native = f"native rate {self.device.default_sample_rate_hz:.0f} Hz"
        return f"{native}; standard rates it accepts: {', '.join(rates) or 'none (is it still connected?)'}"

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        started = time.perf_counter()
        now_s = time.monotonic()
        if status.input_overflow:
            self.input_overflows += 1
        ring: RingBuffer = self._ring  # type: ignore[assignment]
        if self._resume_from_s is not None:
            # First block after a loss: the device was away from the last captured sample
            # until this block's first sample.
            gap = max(0, round((now_s - frames / self.sample_rate_hz - self._resume_from_s) * self.sample_rate_hz))
            ring.skip(gap, now_s - frames / self.sample_rate_hz)
            self.gap_samples += gap
            self._restored = DeviceEvent(
                "restored", self.name, now_s, ring.written_samples, gap_samples=gap,
                message=f"capture resumed after {gap / self.sample_rate_hz:.2f} s ({gap} samples lost)",
            )
            self._resume_from_s = None
        ring.write(indata, now_s)
        self._last_block_s = now_s
        self._awaiting_first_block = False
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if elapsed_ms > self.max_write_ms:
            self.max_write_ms = elapsed_ms

    def _report(self, event: DeviceEvent) -> None:
        logger.warning("%s", event)
        listener = self.on_device_event
        if listener is not None:
            listener(event)

    def _watch(self) -> None:
        """Watchdog thread: notice a lost device, reopen it with backoff, report each step."""
        poll_s = min(0.05, self.stall_timeout_s / 4)
        try:
            while not self._stop.wait(poll_s):
                if self._restored is not None:
                    event, self._restored = self._restored, None
                    self._report(event)
                limit_s = FIRST_BLOCK_TIMEOUT_S if self._awaiting_first_block else self.stall_timeout_s
                stalled = time.monotonic() - self._last_block_s > limit_s
                if self._resume_from_s is None and (self._stream_ended.is_set() or stalled):
                    self._lose("its stream ended" if self._stream_ended.is_set() else f"no audio for {limit_s:.1f} s")
        except Exception as exc:  # surfaced through StreamTagger
            self.error = exc
        finally:
            self._close_stream()
            self._done.set()

    def _lose(self, reason: str) -> None:
        """Handle a lost device: report it, then reopen it with backoff (or end capture)."""
        self._close_stream()  # no late block of the old stream can arrive after this
        self._resume_from_s = self._last_block_s
        self.device_losses += 1
        ring: RingBuffer = self._ring  # type: ignore[assignment]
        self._report(DeviceEvent("lost", self.name, time.monotonic(), ring.written_samples, message=reason))
        if not self.reconnect:
            raise DeviceError(f"input device {self.device.index} {self.device.name!r} was lost: {reason}")
        delay_s = self.retry_initial_s
        attempt = 0
        while not self._stop.wait(delay_s):
            attempt += 1
            try:
                self._open()
            except DeviceError as exc:
                delay_s = min(2 * delay_s, self.retry_max_s)
                self._report(DeviceEvent(
                    "retry_failed", self.name, time.monotonic(), ring.written_samples, attempt=attempt,
                    retry_in_s=delay_s, message=f"attempt {attempt} failed ({exc}); next in {delay_s:.1f} s",
                ))
                continue
            # Reopened: the callback measures the gap with its first block; until then the
            # stall timer runs from now.
            self._last_block_s = time.monotonic()
            return

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close(ignore_errors=True)

    @property
    def finished(self) -> bool:
        """True once capture has ended for good (stopped, or a lost device not reconnected)."""
        return self._done.is_set()

    def stop(self) -> None:
        """Stop capturing: end the watchdog (and any reopening) and close the device stream."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join()
        self._close_stream()
        self._done.set()


class _ReplaySource:
    """Shared replay loop of :class:`FileSource` and :class:`ArraySource`."""

    name: str
    sample_rate_hz: int

    def __init__(self, realtime: bool, block_samples: int, max_frames: int | None = None) -> None:
        if block_samples <= 0:
            raise ValueError(f"block_samples must be positive, not {block_samples}")
        self.realtime = realtime
        self.block_samples = block_samples
        self.max_frames = max_frames
        self.input_overflows = 0
        self.max_write_ms = 0.0
        self.error: BaseException | None = None
        self.device_losses = 0
        self.gap_samples = 0
        self.connected = True
        self.on_device_event: Callable[[DeviceEvent], object] | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_block(self, frames: int) -> np.ndarray:
        """Next up to ``frames`` frames shaped [frames] or [frames, channels]; empty at the end."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release what the source holds."""

    def start(self, ring: RingBuffer) -> None:
        """Start the replay thread writing into ``ring``."""
        self._thread = threading.Thread(target=self._run, args=(ring,), name="rtag-replay", daemon=True)
        self._thread.start()

    def _run(self, ring: RingBuffer) -> None:
        started = time.monotonic()
        position = 0
        try:
            while not self._stop.is_set():
                wanted = self.block_samples if self.max_frames is None else min(self.block_samples, self.max_frames - position)
                if wanted <= 0:
                    break
                block = self._read_block(wanted)
                frames = int(block.shape[0])
                if frames == 0:
                    break
                if self.realtime:
                    delay_s = started + (position + frames) / self.sample_rate_hz - time.monotonic()
                    if delay_s > 0 and self._stop.wait(delay_s):
                        break
                else:
                    while ring.free_samples < min(frames, ring.capacity_samples) and not self._stop.is_set():
                        self._stop.wait(0.001)
                write_start = time.perf_counter()
                ring.write(block)
                self.max_write_ms = max(self.max_write_ms, (time.perf_counter() - write_start) * 1000.0)
                position += frames
        except Exception as exc:  # surfaced through StreamTagger
            self.error = exc
        finally:
            self._done.set()

    @property
    def finished(self) -> bool:
        """True once every sample was written (or the replay failed or was stopped)."""
        return self._done.is_set()

    def stop(self) -> None:
        """Stop the replay thread and release the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._close()


class FileSource(_ReplaySource):
    """Replay an audio file through the streaming path.

    Args:
        path: any file libsndfile reads (WAV, FLAC, OGG, ...), at any rate and channel count
            (channels are averaged; the stream resamples to the model rate).
        realtime: ``True`` (default) writes at real-time pace, like a microphone; ``False``
            replays as fast as the pipeline takes it, losing nothing.
        block_samples: frames per write at the file's rate (default 200).
        duration_s: replay only the first this many seconds of the file (default: all of it).

    Raises:
        AudioFileError: if the file cannot be opened as audio (names the file and reason).
        ValueError: for a ``duration_s`` that is not positive.
    """

    def __init__(self, path: str | Path, *, realtime: bool = True, block_samples: int = 200,
                 duration_s: float | None = None) -> None:
        if duration_s is not None and not duration_s > 0:
            raise ValueError(f"duration_s must be positive, not {duration_s}")
        super().__init__(realtime, block_samples)
        self.path, self._file = open_sound_file(path)
        self.name = self.path.name
        self.sample_rate_hz = int(self._file.samplerate)
        if duration_s is not None:
            self.max_frames = max(1, round(duration_s * self.sample_rate_hz))

    def _read_block(self, frames: int) -> np.ndarray:
        start = self._file.tell()
        block = self._file.read(frames, dtype="float32", always_2d=True)
        if not np.all(np.isfinite(block)):
            bad = int(np.count_nonzero(~np.isfinite(block)))
            raise AudioFileError(self.path, f"holds {bad} NaN or infinite samples in frames {start}-{start + block.shape[0]}")
        return block

    def _close(self) -> None:
        self._file.close()


class ArraySource(_ReplaySource):
    """Replay samples held in memory through the streaming path.

    Args:
        audio: float32 samples shaped [N] or [N, channels].
        sample_rate_hz: their rate (default 44100).
        realtime: ``False`` (default) replays as fast as the pipeline takes it, losing nothing;
            ``True`` paces the writes like a microphone.
        block_samples: frames per write (default 200).
    """

    def __init__(
        self,
        audio: np.ndarray,
        sample_rate_hz: int = 44100,
        *,
        realtime: bool = False,
        block_samples: int = 200,
    ) -> None:
        super().__init__(realtime, block_samples)
        self._audio = np.asarray(audio, dtype=np.float32)
        if self._audio.ndim not in (1, 2):
            raise ValueError(f"array: expected audio shaped [N] or [N, channels], got {self._audio.shape}")
        if self._audio.ndim == 2 and self._audio.shape[0] < self._audio.shape[1] and self._audio.shape[0] <= MAX_CHANNELS:
            raise ValueError(
                f"array: shaped {self._audio.shape}, which looks like [channels, N]; pass [N, channels] "
                "(audio.T) or one channel [N]"
            )
        if self._audio.size == 0:
            raise ValueError("array: holds no samples")
        if not np.all(np.isfinite(self._audio)):
            bad = int(np.count_nonzero(~np.isfinite(self._audio)))
            raise ValueError(f"array: holds {bad} NaN or infinite samples")
        problem = rate_problem(sample_rate_hz)
        if problem is not None:
            raise ValueError(f"array: sample_rate_hz {problem}")
        self.name = "array"
        self.sample_rate_hz = int(sample_rate_hz)
        self._offset = 0

    def _read_block(self, frames: int) -> np.ndarray:
        block = self._audio[self._offset : self._offset + frames]
        self._offset += int(block.shape[0])
        return block
