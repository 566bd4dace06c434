"""Configuration of the corpus builder (``python -m offline build-corpus``).

Every field has a default, so ``CorpusConfig()`` is the default corpus; ``configs/corpus/default.yaml``
spells the same values out and is read with ``rtag.config.load_yaml(path, CorpusConfig, overrides)``.
Ranges are ``(low, high)`` pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FontConfig:
    """One sampled instrument set used to render clips.

    name: short name used in file names and the manifest ``source`` column (``"fluidr3"``).
    backend: ``"fluidsynth"`` for a SoundFont 2 file, ``"timidity"`` for a TiMidity++ cfg
        (GUS ``.pat`` sets such as freepats).
    path: the ``.sf2`` file (fluidsynth) or the ``.cfg`` file (timidity).
    split: ``"train"`` or ``"heldout"``; every clip rendered from this font goes to that split,
        so no instrument recording is on both sides.
    license: licence of the samples, copied into every manifest row rendered from the font.
    """

    name: str
    backend: str
    path: str
    split: str
    license: str


DEFAULT_FONTS: tuple[FontConfig, ...] = (
    FontConfig(
        name="fluidr3",
        backend="fluidsynth",
        path="/usr/share/sounds/sf2/FluidR3_GM.sf2",
        split="train",
        license="MIT (Fluid R3 GM by Frank Wen; Debian fluid-soundfont-gm)",
    ),
    FontConfig(
        name="freepats",
        backend="timidity",
        path="/etc/timidity/freepats.cfg",
        split="train",
        license="GPL-2+ with composition exception (freepats; Debian freepats)",
    ),
    FontConfig(
        name="gmbank",
        backend="fluidsynth",
        path="/usr/share/sounds/sf2/sf_GMbank.sf2",
        split="train",
        license="Public domain (GM GS Bank 2.01, sf_GMbank.sf2; Debian csound-soundfont)",
    ),
    FontConfig(
        name="timgm6mb",
        backend="fluidsynth",
        path="/usr/share/sounds/sf2/TimGM6mb.sf2",
        split="heldout",
        license="GPL-2 (TimGM6mb by Tim Brechbill; Debian timgm6mb-soundfont)",
    ),
)


@dataclass(frozen=True)
class EffectsConfig:
    """Room, background and level applied to every rendered clip.

    peak_dbfs_range: final peak level, drawn uniformly in dBFS. Default (-30, -1).
    reverb_probability: share of clips convolved with a synthetic room response
        (exponentially decaying Gaussian noise). Default 0.6.
    reverb_rt60_s_range: reverberation time of that response in seconds. Default (0.15, 1.2).
    reverb_wet_range: level of the reverberant part relative to the dry part (linear). Default (0.05, 0.5).
    noise_probability: share of clips with added background noise. Default 0.6.
    noise_snr_db_range: signal-to-noise ratio of the background in dB (signal RMS over noise RMS).
        Default (12, 40).
    real_noise_probability: among noisy clips, the share whose background is a real ``_other``
        recording from the same split (the rest get white, pink or brown noise). Default 0.5.
    fade_s: linear fade-out at the cut end of every clip in seconds. Default 0.01.
    """

    peak_dbfs_range: tuple[float, float] = (-30.0, -1.0)
    reverb_probability: float = 0.6
    reverb_rt60_s_range: tuple[float, float] = (0.15, 1.2)
    reverb_wet_range: tuple[float, float] = (0.05, 0.5)
    noise_probability: float = 0.6
    noise_snr_db_range: tuple[float, float] = (12.0, 40.0)
    real_noise_probability: float = 0.5
    fade_s: float = 0.01


@dataclass(frozen=True)
class TypingConfig:
    """Typing sequences for ``Computer_keyboard`` joined from single key recordings
    (:mod:`offline.corpus.keystrokes`).

    source: real-data recording group whose clips are single key presses (``*-0``) and releases
        (``*-1``); they enter the corpus only as typing sequences. Empty disables. Default
        "bucklespring".
    sequences: sequences made from that group (they take its split). Default 120.
    length_s_range: sequence length in seconds, drawn log-uniformly. Default (1.5, 6.0).
    keys_per_s_range: the typist's speed, drawn once per sequence. Default (2.5, 9.0).
    rhythm_spread: standard deviation of the log of the interval between keystrokes. Default 0.45.
    hold_s_range: time a key is held before its release sounds. Default (0.04, 0.16).
    pause_probability: chance that a keystroke is followed by a pause. Default 0.12.
    pause_s_range: length of such a pause in seconds. Default (0.25, 1.2).
    level_jitter_db: standard deviation of a keystroke's level around the sequence's. Default 3.
    peak_dbfs_range: peak level of a sequence. Default (-24, -1).
    """

    source: str = "bucklespring"
    sequences: int = 120
    length_s_range: tuple[float, float] = (1.5, 6.0)
    keys_per_s_range: tuple[float, float] = (2.5, 9.0)
    rhythm_spread: float = 0.45
    hold_s_range: tuple[float, float] = (0.04, 0.16)
    pause_probability: float = 0.12
    pause_s_range: tuple[float, float] = (0.25, 1.2)
    level_jitter_db: float = 3.0
    peak_dbfs_range: tuple[float, float] = (-24.0, -1.0)

    def __post_init__(self) -> None:
        """Refuse values that cannot describe typing; the message names the field."""
        for name in ("length_s_range", "keys_per_s_range", "hold_s_range", "pause_s_range", "peak_dbfs_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"typing.{name}: low > high in {(low, high)}")
        if self.length_s_range[0] <= 0 or self.keys_per_s_range[0] <= 0 or self.hold_s_range[0] < 0:
            raise ValueError("typing: length_s_range and keys_per_s_range must be > 0, hold_s_range >= 0")
        if not 0.0 <= self.pause_probability <= 1.0:
            raise ValueError(f"typing.pause_probability: must be in [0, 1], got {self.pause_probability}")
        if self.sequences < 0 or self.rhythm_spread < 0 or self.level_jitter_db < 0:
            raise ValueError("typing: sequences, rhythm_spread and level_jitter_db must be >= 0")
        if self.peak_dbfs_range[1] > 0.0:
            raise ValueError(f"typing.peak_dbfs_range: must stay <= 0 dBFS, got {self.peak_dbfs_range}")


@dataclass(frozen=True)
class CorpusConfig:
    """The whole corpus build.

    seed: master seed; the same seed and config give byte-identical WAV files. Default 2018.
    sample_rate_hz: rate of every output clip. Default 44100.
    classes: labels to render; empty means every class with a render recipe
        (see ``offline.corpus.recipes.RECIPES``). Default ().
    train_clips_per_class: rendered training clips per class, spread over the train fonts. Default 135.
    heldout_clips_per_class: rendered held-out clips per class, spread over the held-out fonts.
        Default 25.
    length_s_range: clip length in seconds, drawn log-uniformly. Default (0.5, 6.0).
    fonts: sampled instrument sets and the split each belongs to.
    effects: room, background and level (see ``EffectsConfig``).
    real_heldout_fraction: target share of each label's real clips put in ``heldout``; whole
        recording groups move, so the share is approximate. Default 0.3.
    real_labels: real-clip labels to include; empty means the rendered classes plus the negative
        label (all real labels when ``classes`` is empty). Default ().
    real_min_clips: a real label with fewer clips than this and no render recipe is left out
        (too little to learn or test a class from; counted in ``corpus.json``). Default 8.
    typing: typing sequences from single key recordings (see ``TypingConfig``).
    copy_real: copy real clips into the corpus folder (True) or reference them by absolute path.
        Default True.
    other_label: the real-data label for sounds outside the 41 classes. Default "_other".
    other_as_label: keep ``other_label`` clips as an extra training label (True) or put them all
        in ``heldout`` for measuring false positives only (False). Default True.
    other_train_clips: rendered training clips of instruments and sounds of no class (see
        ``offline.corpus.recipes.OTHER_RECIPES``), labelled ``other_label``, spread over the
        train fonts; none when ``other_as_label`` is False. Held-out ``other_label`` clips stay
        real recordings only. Default 270.
    folds: number of cross-validation folds over the training rows. Default 5.
    workers: parallel render processes. Default 2.
    """

    seed: int = 2018
    sample_rate_hz: int = 44100
    classes: tuple[str, ...] = ()
    train_clips_per_class: int = 135
    heldout_clips_per_class: int = 25
    length_s_range: tuple[float, float] = (0.5, 6.0)
    fonts: tuple[FontConfig, ...] = DEFAULT_FONTS
    effects: EffectsConfig = field(default_factory=EffectsConfig)
    real_heldout_fraction: float = 0.3
    real_labels: tuple[str, ...] = ()
    real_min_clips: int = 8
    typing: TypingConfig = field(default_factory=TypingConfig)
    copy_real: bool = True
    other_label: str = "_other"
    other_as_label: bool = True
    other_train_clips: int = 270
    folds: int = 5
    workers: int = 2


    def __post_init__(self) -> None:
        """Refuse values that cannot describe a corpus; the message names the field."""
        low_s, high_s = self.length_s_range
        if not 0.1 <= low_s <= high_s:
            raise ValueError(f"length_s_range: need 0.1 <= low <= high, got {self.length_s_range}")
        for name in ("train_clips_per_class", "heldout_clips_per_class", "real_min_clips", "other_train_clips"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.real_heldout_fraction <= 1.0:
            raise ValueError(f"real_heldout_fraction: must be in [0, 1], got {self.real_heldout_fraction}")
        if self.folds < 1 or self.workers < 1:
            raise ValueError(f"folds and workers: must be >= 1, got {self.folds} and {self.workers}")
        names = [font.name for font in self.fonts]
        if len(set(names)) != len(names):
            raise ValueError(f"fonts: names must be unique, got {names}")
        for font in self.fonts:
            if font.split not in ("train", "heldout"):
                raise ValueError(f"fonts.{font.name}.split: must be 'train' or 'heldout', got {font.split!r}")
        effects = self.effects
        for name in ("reverb_probability", "noise_probability", "real_noise_probability"):
            if not 0.0 <= getattr(effects, name) <= 1.0:
                raise ValueError(f"effects.{name}: must be in [0, 1], got {getattr(effects, name)}")
        for name in ("peak_dbfs_range", "reverb_rt60_s_range", "reverb_wet_range", "noise_snr_db_range"):
            low, high = getattr(effects, name)
            if low > high:
                raise ValueError(f"effects.{name}: low > high in {(low, high)}")
        if effects.peak_dbfs_range[1] > 0.0 or effects.reverb_rt60_s_range[0] <= 0.0:
            raise ValueError("effects: peak_dbfs_range must stay <= 0 dBFS and reverb_rt60_s_range > 0 s")
