"""The papers' on-the-fly augmentation, on raw audio (section 2.4 of the workshop paper).

* Random crop: a clip longer than the window is cropped at a uniformly random start.
* Padding with replication: a clip that fits ``n`` times into the window appears ``k`` times,
  ``k`` uniform in ``1..n`` (probability ``1/n`` each), and the remaining space before, between
  and after the copies is zeros, split at random.
* Time shift: a uniformly random circular shift of the clip before cropping or padding.
* Same-class mixing: a weighted sum of clips of one class; the target stays that class.
* Different-class mixing: a weighted sum of clips of distinct classes; the target holds the
  weights (soft targets). The weights are Dirichlet-distributed and sum to one.

Beyond the papers, for robustness to rooms and microphones (each with a probability in
:class:`~offline.config.AugmentConfig`, all off by default): a small pitch shift of the clip,
then on the finished example a synthetic room, a background (a real clip of the negative label
or coloured noise) at a random SNR, an overloaded microphone (soft clipping), a microphone colour
(random EQ, low cut, band limit down to the telephone band) and a peak level; examples of the
negative label may become plain noise.

Everything works on raw audio. The log-mel input of cnn-spec and cnn-comb is computed from this
audio inside the network, so both inputs always carry the same crop, padding, shift and mixture.
All randomness comes from the ``numpy.random.Generator`` passed in, so an example is a pure
function of its seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from offline.config import AugmentConfig
from offline.effects import (
    NOISE_COLOURS,
    active_rms,
    add_reverb,
    coloured_noise,
    filter_magnitude,
    high_pass_magnitude,
    loop_to_length,
    low_pass_magnitude,
    pitch_shift,
    random_eq_magnitude,
    room_impulse_response,
    saturate,
    set_peak_dbfs,
)

__all__ = ["Augmenter", "fit_to_window", "mixing_weights", "peak_normalize", "time_shift"]


def fit_to_window(clip: np.ndarray, window_samples: int, rng: np.random.Generator, replicate: bool = True) -> np.ndarray:
    """Crop or pad ``clip`` to exactly ``window_samples`` samples.

    Args:
        clip: 1-D samples.
        window_samples: model input length.
        rng: the random generator.
        replicate: for a short clip fitting ``n`` times, place ``k ~ U{1..n}`` copies with random
            zero gaps (default true); false places one copy at a random offset.

    Returns:
        A new float32 array of ``window_samples`` samples.
    """
    length = clip.shape[0]
    if length >= window_samples:
        start = int(rng.integers(0, length - window_samples + 1))
        return np.array(clip[start : start + window_samples], dtype=np.float32)
    fits = window_samples // length
    copies = int(rng.integers(1, fits + 1)) if replicate else 1
    free = window_samples - copies * length
    # Sorted cut points split the free space into copies + 1 zero gaps (before, between, after).
    cuts = np.sort(rng.integers(0, free + 1, size=copies))
    out = np.zeros(window_samples, dtype=np.float32)
    for i, cut in enumerate(cuts):
        start = int(cut) + i * length
        out[start : start + length] = clip
    return out


def time_shift(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Circularly shift ``clip`` by a uniformly random number of samples in ``[0, len)``."""
    return np.roll(np.asarray(clip, dtype=np.float32), int(rng.integers(0, clip.shape[0])))


def mixing_weights(count: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` random non-negative weights summing to one (symmetric Dirichlet(``alpha``))."""
    return rng.dirichlet(np.full(count, alpha)).astype(np.float64)


def peak_normalize(audio: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """``audio / max(peak, floor)``, so clips of different levels mix in the stated proportions."""
    return audio / max(float(np.max(np.abs(audio))), floor)


class Augmenter:
    """Builds augmented training examples from a set of clips.

    Args:
        load_clip: returns the samples of clip ``i`` (for example a cached memory map).
        class_ids: class index of every clip.
        num_classes: size of the target vectors.
        window_samples: model input length.
        config: probabilities and mixing parameters (see :class:`offline.config.AugmentConfig`).
        peak_floor: floor of the per-clip peak normalisation applied before mixing (default 1e-3).
        sample_rate_hz: rate of the clips, for the filters and rooms (default 44100).
        background_indices: clips usable as backgrounds (the training clips of the negative
            label); default none, which leaves only coloured-noise backgrounds.
        negative_class: class index of the negative label, or None when the data has none.
    """

    def __init__(
        self,
        load_clip: Callable[[int], np.ndarray],
        class_ids: Sequence[int],
        num_classes: int,
        window_samples: int,
        config: AugmentConfig,
        peak_floor: float = 1e-3,
        sample_rate_hz: int = 44100,
        background_indices: Sequence[int] = (),
        negative_class: int | None = None,
    ) -> None:
        self.load_clip = load_clip
        self.class_ids = np.asarray(class_ids, dtype=np.int64)
        self.num_classes = num_classes
        self.window_samples = window_samples
        self.config = config
        self.peak_floor = peak_floor
        self.sample_rate_hz = sample_rate_hz
        self.background_indices = np.asarray(background_indices, dtype=np.int64)
        self.negative_class = negative_class
        self.members = {int(c): np.flatnonzero(self.class_ids == c) for c in np.unique(self.class_ids)}

    def window(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """Clip ``index`` pitch-shifted (with ``pitch_shift_prob``), time-shifted (with
        ``time_shift_prob``) and cropped or padded."""
        clip = np.asarray(self.load_clip(index), dtype=np.float32)
        if rng.random() < self.config.pitch_shift_prob:
            semitones = float(rng.uniform(-1.0, 1.0)) * self.config.pitch_shift_semitones
            clip = pitch_shift(clip, semitones, self.sample_rate_hz)
        if rng.random() < self.config.time_shift_prob:
            clip = time_shift(clip, rng)
        return fit_to_window(clip, self.window_samples, rng, self.config.pad_replication)

    def partners(self, index: int, same_class: bool, rng: np.random.Generator) -> list[int]:
        """Clips to mix with clip ``index``: of its own class, or one each of distinct other classes.

        Returns an empty list when no partner exists (a class with one clip, a single class).
        """
        count = int(rng.integers(2, self.config.max_mix_clips + 1)) - 1
        own = int(self.class_ids[index])
        if same_class:
            pool = self.members[own][self.members[own] != index]
            if pool.size == 0:
                return []
            return [int(i) for i in rng.choice(pool, size=count, replace=pool.size < count)]
        others = np.array([c for c in self.members if c != own])
        if others.size == 0:
            return []
        classes = rng.choice(others, size=min(count, others.size), replace=False)
        return [int(rng.choice(self.members[int(c)])) for c in classes]

    def example(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One augmented example for clip ``index``: ``(audio[window], target[num_classes])``.

        The target sums to one; it is one-hot unless clips of different classes were mixed.
        """
        draw = rng.random()
        same = draw < self.config.same_class_mix_prob
        different = not same and draw < self.config.same_class_mix_prob + self.config.diff_class_mix_prob
        members = [index] + (self.partners(index, same, rng) if same or different else [])
        target = np.zeros(self.num_classes, dtype=np.float32)
        if len(members) == 1:
            target[self.class_ids[index]] = 1.0
            return self.condition(self.window(index, rng), target, rng), target
        weights = mixing_weights(len(members), self.config.mix_weight_alpha, rng)
        audio = np.zeros(self.window_samples, dtype=np.float32)
        for member, weight in zip(members, weights):
            audio += np.float32(weight) * peak_normalize(self.window(member, rng), self.peak_floor)
            target[self.class_ids[member]] += np.float32(weight)
        target /= target.sum()
        return self.condition(audio, target, rng), target

    def condition(self, audio: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The recording conditions of an example: noise in place of a negative example, then
        room, background, overload, microphone colour and level, each with its probability."""
        config, rate = self.config, self.sample_rate_hz
        negative = self.negative_class is not None and target[self.negative_class] == 1.0
        if negative and rng.random() < config.negative_noise_prob:
            audio = coloured_noise(audio.size, str(rng.choice(sorted(NOISE_COLOURS))), rng)
        if not np.any(audio):
            return audio
        if rng.random() < config.reverb_prob:
            rt60_s = float(rng.uniform(*config.reverb_rt60_s_range))
            response = room_impulse_response(rt60_s, rate, rng, predelay_s=float(rng.uniform(0.0, 0.03)))
            audio = add_reverb(audio, response, float(rng.uniform(*config.reverb_wet_range)))
        if rng.random() < config.background_prob:
            audio = self._add_background(audio, rng)
        if rng.random() < config.saturation_prob:
            audio = saturate(audio, float(rng.uniform(*config.saturation_drive_db_range)))
        if rng.random() < config.eq_prob:
            audio = filter_magnitude(audio, random_eq_magnitude(audio.size, rate, config.eq_gain_db, rng))
        if rng.random() < config.low_cut_prob:
            cutoff_hz = _log_uniform(config.low_cut_hz_range, rng)
            audio = filter_magnitude(audio, high_pass_magnitude(audio.size, rate, cutoff_hz))
        if rng.random() < config.band_limit_prob:
            cutoff_hz = _log_uniform(config.band_limit_hz_range, rng)
            audio = filter_magnitude(audio, low_pass_magnitude(audio.size, rate, cutoff_hz))
        if rng.random() < config.level_prob and np.any(audio):
            audio = set_peak_dbfs(audio, float(rng.uniform(*config.level_dbfs_range)))
        return audio.astype(np.float32, copy=False)

    def _add_background(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.background_indices.size and rng.random() >= self.config.background_noise_share:
            source = np.asarray(self.load_clip(int(rng.choice(self.background_indices))), dtype=np.float32)
            background = loop_to_length(source, audio.size, int(rng.integers(0, source.size)))
        else:
            background = coloured_noise(audio.size, str(rng.choice(sorted(NOISE_COLOURS))), rng)
        background_rms = float(np.sqrt(np.mean(np.square(background, dtype=np.float64))))
        if background_rms == 0.0:
            return audio
        snr_db = float(rng.uniform(*self.config.background_snr_db_range))
        gain = active_rms(audio) / background_rms * 10.0 ** (-snr_db / 20.0)
        return (audio + np.float32(gain) * background).astype(np.float32)

    def validation_window(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """A fixed-seed crop or padding of clip ``index`` without shift or mixing (validation)."""
        return fit_to_window(np.asarray(self.load_clip(index), dtype=np.float32), self.window_samples, rng, replicate=False)


def _log_uniform(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    low, high = bounds
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))
