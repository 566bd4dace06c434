"""Audio effects shared by the corpus renders and the training augmentation: rooms, backgrounds,
levels, colour and pitch. Every function is deterministic given its random generator, so a seeded
build or training run gives identical samples."""

from __future__ import annotations

import numpy as np
import soxr
from scipy.signal import fftconvolve

NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
"""Coloured-noise name -> exponent of the 1/f^exponent power spectrum."""


def room_impulse_response(rt60_s: float, sample_rate_hz: int, rng: np.random.Generator,
                          predelay_s: float = 0.0) -> np.ndarray:
    """A synthetic room response: Gaussian noise whose amplitude falls 60 dB in ``rt60_s``.

    rt60_s: reverberation time in seconds (> 0); the response is that long.
    sample_rate_hz: sample rate of the response.
    rng: noise source.
    predelay_s: silence before the decay starts. Default 0.
    Returns float32 with unit energy.
    """
    if rt60_s <= 0:
        raise ValueError(f"rt60_s must be > 0, got {rt60_s}")
    length = max(1, round(rt60_s * sample_rate_hz))
    t = np.arange(length) / sample_rate_hz
    decay = np.exp(-np.log(1000.0) * t / rt60_s)  # amplitude -60 dB at rt60_s
    response = rng.standard_normal(length) * decay
    response = np.concatenate([np.zeros(round(predelay_s * sample_rate_hz)), response])
    return (response / np.sqrt(np.sum(response**2))).astype(np.float32)


def add_reverb(audio: np.ndarray, response: np.ndarray, wet: float) -> np.ndarray:
    """Mix ``audio`` with its convolution by ``response``; the wet part is scaled so its RMS is
    ``wet`` times the dry RMS. The result has the length of ``audio`` (the tail is cut)."""
    reverberant = fftconvolve(audio, response)[: audio.size]
    dry_rms, wet_rms = _rms(audio), _rms(reverberant)
    if wet_rms == 0.0:
        return audio.astype(np.float32)
    return (audio + reverberant * (wet * dry_rms / wet_rms)).astype(np.float32)


def coloured_noise(length: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """``length`` samples of white, pink or brown noise (unit RMS), shaped in the frequency domain."""
    if colour not in NOISE_COLOURS:
        raise ValueError(f"noise colour must be one of {sorted(NOISE_COLOURS)}, got {colour!r}")
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequency = np.arange(spectrum.size, dtype=np.float64)
    frequency[0] = 1.0
    noise = np.fft.irfft(spectrum / frequency ** (NOISE_COLOURS[colour] / 2.0), n=length)
    rms = _rms(noise)
    return (noise / rms if rms > 0 else noise).astype(np.float32)


def loop_to_length(audio: np.ndarray, length: int, offset: int) -> np.ndarray:
    """``length`` samples of ``audio`` starting at ``offset``, wrapping around as often as needed."""
    if audio.size == 0:
        raise ValueError("cannot loop an empty signal")
    return np.take(audio, (np.arange(length) + offset) % audio.size)


def add_background(audio: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    """Add ``background`` (same length) so that RMS(audio) / RMS(background) is ``snr_db`` dB."""
    if background.shape != audio.shape:
        raise ValueError(f"background has shape {background.shape}, audio {audio.shape}")
    noise_rms = _rms(background)
    if noise_rms == 0.0:
        return audio.astype(np.float32)
    gain = _rms(audio) / noise_rms * 10.0 ** (-snr_db / 20.0)
    return (audio + gain * background).astype(np.float32)


def fade_out(audio: np.ndarray, fade_samples: int) -> np.ndarray:
    """Linear fade to zero over the last ``fade_samples`` samples (a copy)."""
    out = audio.astype(np.float32, copy=True)
    n = min(fade_samples, out.size)
    if n > 0:
        out[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return out


def set_peak_dbfs(audio: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale ``audio`` so its absolute peak is ``peak_dbfs`` dB relative to full scale (1.0)."""
    peak = _peak(audio)
    if peak == 0.0:
        raise ValueError("cannot set the level of a silent signal")
    return (audio * (10.0 ** (peak_dbfs / 20.0) / peak)).astype(np.float32)


def _peak(audio: np.ndarray) -> float:
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def _rfft_frequencies(length: int, sample_rate_hz: int) -> np.ndarray:
    frequency = np.fft.rfftfreq(length, 1.0 / sample_rate_hz)
    frequency[0] = frequency[1] if frequency.size > 1 else 1.0
    return frequency


def filter_magnitude(audio: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """``audio`` filtered in the frequency domain (zero phase) by ``magnitude``, one gain per
    ``rfft`` bin of ``audio``."""
    return np.fft.irfft(np.fft.rfft(audio) * magnitude, n=audio.size).astype(np.float32)


def random_eq_magnitude(length: int, sample_rate_hz: int, max_gain_db: float, rng: np.random.Generator,
                        bands: int = 6) -> np.ndarray:
    """A microphone-like colour: a smooth gain curve through ``bands`` points spread over
    50 Hz-16 kHz on a log scale, each within +-``max_gain_db``; one gain per ``rfft`` bin."""
    log_frequency = np.log(_rfft_frequencies(length, sample_rate_hz))
    points = np.linspace(np.log(50.0), np.log(16000.0), bands)
    gains_db = rng.uniform(-max_gain_db, max_gain_db, size=bands)
    return (10.0 ** (np.interp(log_frequency, points, gains_db) / 20.0)).astype(np.float32)


def high_pass_magnitude(length: int, sample_rate_hz: int, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Butterworth-shaped high-pass gain (``order`` x 6 dB/octave below ``cutoff_hz``) per ``rfft`` bin."""
    ratio = _rfft_frequencies(length, sample_rate_hz) / cutoff_hz
    return (ratio**order / np.sqrt(1.0 + ratio ** (2 * order))).astype(np.float32)


def low_pass_magnitude(length: int, sample_rate_hz: int, cutoff_hz: float, order: int = 8) -> np.ndarray:
    """Butterworth-shaped low-pass gain (``order`` x 6 dB/octave above ``cutoff_hz``) per ``rfft``
    bin: a band limit such as a telephone line's 3.4 kHz or a low-rate codec's."""
    ratio = _rfft_frequencies(length, sample_rate_hz) / cutoff_hz
    return (1.0 / np.sqrt(1.0 + ratio ** (2 * order))).astype(np.float32)


def saturate(audio: np.ndarray, drive_db: float) -> np.ndarray:
    """``audio`` through a soft clipper (``tanh``) driven ``drive_db`` above its own peak, as an
    overloaded microphone, preamp or phone line shapes a sound, scaled back to the input's peak.

    drive_db: gain before the clipper relative to a peak at 1.0 (0 puts the peak at the knee of
        ``tanh``; 20 flattens most of the waveform). A silent input comes back unchanged.
    """
    peak = _peak(audio)
    if peak == 0.0:
        return np.asarray(audio, dtype=np.float32)
    drive = 10.0 ** (drive_db / 20.0)
    shaped = np.tanh(audio * (drive / peak)) * (peak / np.tanh(drive))
    return shaped.astype(np.float32)


def pitch_shift(audio: np.ndarray, semitones: float, sample_rate_hz: int) -> np.ndarray:
    """``audio`` played ``semitones`` higher (lower when negative) by resampling, which also
    shortens (lengthens) it by the same ratio, as a tape or sampler would."""
    ratio = 2.0 ** (semitones / 12.0)
    return soxr.resample(np.asarray(audio, dtype=np.float32), sample_rate_hz * ratio, sample_rate_hz,
                         quality="MQ").astype(np.float32)


def active_rms(audio: np.ndarray, frame_samples: int = 2048, share: float = 0.25) -> float:
    """RMS of the loudest ``share`` of the frames of ``audio``: the level of the sound where it
    sounds, so a short event padded with silence is not counted as quiet."""
    frames = audio.size // frame_samples
    if frames < 2:
        return _rms(audio)
    energy = np.mean(np.square(audio[: frames * frame_samples].reshape(frames, frame_samples), dtype=np.float64), axis=1)
    loudest = np.sort(energy)[-max(1, round(share * frames)):]
    return float(np.sqrt(np.mean(loudest)))
