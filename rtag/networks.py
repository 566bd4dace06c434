"""The papers' three networks: cnn-audio, cnn-spec and cnn-comb.

Every network takes raw audio [B, N] (float32, 44.1 kHz) and returns class logits [B, C]; the
log-mel spectrogram is computed inside (:mod:`rtag.logmel`), so one graph runs from samples to
scores on CPU or GPU. Layer sizes follow Table 1 (cnn-audio) and Table 2 (cnn-spec) of the
workshop paper and come from :class:`rtag.config.ModelConfig`; docs/architecture.md explains the
readings taken where the papers are ambiguous.

Layout of the feature extractors:

- cnn-audio: per block, conv1d -> ReLU -> conv1d -> ReLU -> max-pool -> BatchNorm.
- cnn-spec: per layer, conv2d -> ReLU -> [max-pool] -> BatchNorm (BatchNorm after each pooling,
  and after a convolution that has no pooling).
- cnn-comb: both extractors without their dense heads, features concatenated, then dense ->
  ReLU -> BatchNorm per hidden layer and a final dense layer to the classes.

Convolutions use "same" padding (for even kernels one more sample after than before, as Keras
does) and pooling drops the remainder, so the shapes match the tables exactly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rtag.config import AudioBranchConfig, ConfigError, ModelConfig, SpecBranchConfig
from rtag.logmel import LogMel, resize_frames

__all__ = [
    "AudioFeatures",
    "CnnAudio",
    "CnnComb",
    "CnnSpec",
    "FrontEnd",
    "RumbleFilter",
    "SpecFeatures",
    "TaggerNetwork",
    "build_network",
    "count_parameters",
    "cpu_inference_form",
]


def _init_like_keras(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, the initialisation the papers' Keras models had."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _same_conv2d(in_channels: int, out_channels: int, kernel: int) -> nn.Module:
    """A 2-D convolution with Keras "same" padding; for an even kernel the extra row and column
    of zeros go after the input (padded explicitly, which torch would otherwise do by copying)."""
    if kernel % 2:
        return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)
    before, after = (kernel - 1) // 2, kernel // 2
    return nn.Sequential(
        nn.ZeroPad2d((before, after, before, after)), nn.Conv2d(in_channels, out_channels, kernel)
    )


class AudioFeatures(nn.Module):
    """cnn-audio feature extractor: normalised audio [B, N] -> features [B, F]."""

    def __init__(self, branch: AudioBranchConfig, window_samples: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        length = window_samples
        for channels, kernel, pool in zip(branch.channels, branch.kernels, branch.pools):
            layers += [
                nn.Conv1d(in_channels, channels, kernel, padding="same"),
                nn.ReLU(inplace=True),
                nn.Conv1d(channels, channels, kernel, padding="same"),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(pool),
                nn.BatchNorm1d(channels),
            ]
            in_channels = channels
            length //= pool
        if length < 1:
            raise ConfigError(
                f"model.audio.pools {branch.pools} reduce a {window_samples}-sample input to nothing"
            )
        self.blocks = nn.Sequential(*layers)
        self.num_features = length * in_channels

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.blocks(audio.unsqueeze(1)).flatten(1)


def _solve_sinc_cubed(target: float) -> float:
    """The x in (0, 1) where ``sinc(x)**3 == target`` (sinc(x) = sin(pi x) / (pi x)), by bisection."""
    low, high = 1e-9, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        value = (math.sin(math.pi * middle) / (math.pi * middle)) ** 3
        low, high = (middle, high) if value > target else (low, middle)
    return (low + high) / 2


_HALF_POWER_X = _solve_sinc_cubed(1.0 - 2.0 ** -0.25)
"""Where two cascaded stages of the complement of three length-L moving averages,
(1 - sinc(f L / fs)**3)**2, are at -3 dB, in units of fs / L (about 0.57)."""


class RumbleFilter(nn.Module):
    """Zero-phase high-pass that takes rumble out of each example [B, N] before anything else.

    Microphones pick up handling, wind, traffic and building vibration below the lowest note of
    any class, and studio recordings of quiet notes often hold more energy under 30 Hz than in
    the note; peak normalisation then scales the note down under the rumble. Each of the filter's
    two stages returns its input minus three cascaded centred moving averages of it (a
    near-Gaussian low-pass), each of ``length`` samples, made from cumulative sums so it costs
    O(N) and exports to ONNX. The gain, ``(1 - sinc(f * length / fs)**3)**2``, is -3 dB at
    ``cutoff_hz``, about -19 dB an octave below and -41 dB two octaves below (near the slope of a
    fourth-order Butterworth high-pass, a subsonic filter's usual 24 dB an octave), and within
    0.2 dB of unity from 1.5 x ``cutoff_hz`` up (-0.3 dB at 1.37 x). Edges are reflected.

    Args:
        cutoff_hz: the -3 dB frequency.
        sample_rate_hz: the audio's sample rate.
    """

    PASSES = 3
    STAGES = 2

    def __init__(self, cutoff_hz: float, sample_rate_hz: int) -> None:
        super().__init__()
        self.length = max(2, round(_HALF_POWER_X * sample_rate_hz / cutoff_hz))

    @classmethod
    def of(cls, config: ModelConfig) -> RumbleFilter | None:
        """The filter of a model's config (``config.highpass_hz``), or ``None`` where it sets none."""
        return None if config.highpass_hz is None else cls(config.highpass_hz, config.sample_rate_hz)

    def _moving_average(self, audio: torch.Tensor) -> torch.Tensor:
        left = self.length // 2
        padded = F.pad(audio.unsqueeze(1), (left, self.length - 1 - left), mode="reflect").squeeze(1)
        sums = F.pad(torch.cumsum(padded, dim=1), (1, 0))
        return (sums[:, self.length :] - sums[:, : -self.length]) / self.length

    def _stage(self, audio: torch.Tensor) -> torch.Tensor:
        low = audio
        for _ in range(self.PASSES):
            low = self._moving_average(low)
        return audio - low

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio`` [B, N] with the rumble taken out (N must exceed the filter's length)."""
        high = audio - audio.mean(dim=1, keepdim=True)
        for _ in range(self.STAGES):
            high = self._stage(high)
        return high


class FrontEnd(nn.Module):
    """What every network computes before its first learned layer: raw audio [B, N] -> inputs.

    With ``config.highpass_hz`` set, a :class:`RumbleFilter` first takes out what lies below it.
    Audio is peak-normalised per example (divided by ``max(peak, config.peak_norm_floor)``, so
    the tagger is insensitive to input gain above -60 dBFS); the spectrogram input is the log-mel
    of the normalised audio resized to ``spec_frames`` ([B, 1, n_mels, spec_frames]). It holds no
    weights, only constants derived from the config, so a runtime can compute the inputs of an
    exported graph with it (see :mod:`rtag.onnx_export`).

    Args:
        config: the model's config.
        input_names: the inputs to produce, in order: ``"audio"`` and/or ``"spectrogram"``.
        fft_precision: of the log-mel's FFT, ``"double"`` (default) or ``"single"`` (see
            :class:`~rtag.logmel.LogMel`).
    """

    def __init__(
        self,
        config: ModelConfig,
        input_names: Sequence[str] = ("audio", "spectrogram"),
        fft_precision: str = "double",
    ) -> None:
        super().__init__()
        unknown = set(input_names) - {"audio", "spectrogram"}
        if unknown or not input_names:
            raise ValueError(f"input_names must be 'audio' and/or 'spectrogram', not {tuple(input_names)}")
        self.input_names = tuple(input_names)
        self.rumble_filter = RumbleFilter.of(config)
        if self.rumble_filter is not None and self.rumble_filter.length >= config.window_samples:
            raise ConfigError(f"model.highpass_hz {config.highpass_hz} Hz needs inputs longer than "
                              f"{self.rumble_filter.length} samples; window_samples is {config.window_samples}")
        self.peak_norm_floor = config.peak_norm_floor
        self.frames = config.spec_frames
        wants_spectrogram = "spectrogram" in self.input_names
        self.logmel = LogMel(config.mel, config.sample_rate_hz, fft_precision) if wants_spectrogram else None

    def normalize(self, audio: torch.Tensor) -> torch.Tensor:
        """Peak-normalise each example of ``audio`` [B, N] (identity if the floor is ``None``)."""
        audio = audio.float()
        if self.peak_norm_floor is None:
            return audio
        peak = audio.abs().amax(dim=1, keepdim=True)
        return audio / torch.clamp(peak, min=self.peak_norm_floor)

    def spectrogram(self, normalized: torch.Tensor) -> torch.Tensor:
        """The spectrogram input [B, 1, n_mels, spec_frames] (log-mel in dB, resized) of normalised audio."""
        if self.logmel is None:
            raise ValueError("this front end was built without the spectrogram input")
        return resize_frames(self.logmel(normalized), self.frames).unsqueeze(1)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.rumble_filter is not None:
            audio = self.rumble_filter(audio.float())
        normalized = self.normalize(audio)
        named = {"audio": normalized}
        if self.logmel is not None:
            named["spectrogram"] = self.spectrogram(normalized)
        return tuple(named[name] for name in self.input_names)


class SpecFeatures(nn.Module):
    """cnn-spec feature extractor: spectrogram input [B, 1, n_mels, spec_frames] -> features [B, F]."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        branch: SpecBranchConfig = config.spec
        layers: list[nn.Module] = []
        in_channels = 1
        height, width = config.mel.n_mels, config.spec_frames
        for channels, kernel, pool in zip(branch.channels, branch.kernels, branch.pools):
            layers += [_same_conv2d(in_channels, channels, kernel), nn.ReLU(inplace=True)]
            if pool is not None:
                layers.append(nn.MaxPool2d(tuple(pool)))
                height //= pool[0]
                width //= pool[1]
            layers.append(nn.BatchNorm2d(channels))
            in_channels = channels
        if height < 1 or width < 1:
            raise ConfigError(
                f"model.spec.pools reduce a {config.mel.n_mels}x{config.spec_frames} spectrogram to nothing"
            )
        self.blocks = nn.Sequential(*layers)
        self.num_features = height * width * in_channels

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.blocks(spectrogram).flatten(1)


def _dense_stack(in_features: int, units: Sequence[int], num_classes: int, batch_norm: bool) -> nn.Sequential:
    """Hidden dense layers (dense -> ReLU -> [BatchNorm]) and a final dense layer to the classes."""
    layers: list[nn.Module] = []
    for width in units:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


class TaggerNetwork(nn.Module):
    """Base of all rtag networks: raw audio [B, N] float32 -> logits [B, num_classes].

    A network is its :class:`FrontEnd` (peak normalisation, log-mel) followed by
    :meth:`classify`, which takes the front end's outputs named in :attr:`input_names`.
    """

    input_names: tuple[str, ...] = ("audio", "spectrogram")

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.front_end = FrontEnd(config, self.input_names)

    def classify(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] from the front end's outputs, in the order of :attr:`input_names`."""
        raise NotImplementedError

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.classify(*self.front_end(audio))


class _BranchClassifier(TaggerNetwork):
    """One feature extractor with the papers' classifier head: dense -> ReLU -> BatchNorm -> classes."""

    def __init__(self, config: ModelConfig, extractor: AudioFeatures | SpecFeatures, dense_units: int) -> None:
        super().__init__(config)
        self.extractor = extractor
        self.classifier = _dense_stack(extractor.num_features, [dense_units], config.num_classes, batch_norm=True)
        _init_like_keras(self)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """High-level features [B, F] (the input of the dense head) of raw audio [B, N]."""
        return self.extractor(*self.front_end(audio))

    def classify(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.extractor(*inputs))


class CnnAudio(_BranchClassifier):
    """cnn-audio (Table 1): 1-D CNN on raw audio with a dense layer and a softmax head."""

    input_names = ("audio",)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, AudioFeatures(config.audio, config.window_samples), config.audio.dense_units)


class CnnSpec(_BranchClassifier):
    """cnn-spec (Table 2): 2-D CNN on the log-mel spectrogram with a dense layer and a softmax head."""

    input_names = ("spectrogram",)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, SpecFeatures(config), config.spec.dense_units)


class CnnComb(TaggerNetwork):
    """cnn-comb: the two feature extractors joined by a dense head.

    Train cnn-audio and cnn-spec first, move their extractors in with :meth:`from_branches`,
    call :meth:`freeze_features`, and train only the head.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.audio_extractor = AudioFeatures(config.audio, config.window_samples)
        self.spec_extractor = SpecFeatures(config)
        self.head = _dense_stack(
            self.audio_extractor.num_features + self.spec_extractor.num_features,
            config.head_units,
            config.num_classes,
            batch_norm=config.head_batch_norm,
        )
        self.features_frozen = False
        _init_like_keras(self)

    @classmethod
    def from_branches(cls, audio: CnnAudio, spec: CnnSpec, config: ModelConfig) -> CnnComb:
        """A cnn-comb whose extractors are copies of the trained ``audio`` and ``spec`` extractors.

        Raises:
            ConfigError: if the branches were built with other extractor settings than ``config``.
        """
        for branch, name, keys in (
            (audio, "audio", ("audio", "window_samples", "sample_rate_hz", "peak_norm_floor")),
            (spec, "spec", ("spec", "mel", "spec_frames", "window_samples", "sample_rate_hz", "peak_norm_floor")),
        ):
            for key in keys:
                if getattr(branch.config, key) != getattr(config, key):
                    raise ConfigError(
                        f"cnn-{name} branch was built with {key}={getattr(branch.config, key)!r}, "
                        f"the cnn-comb config has {getattr(config, key)!r}"
                    )
        comb = cls(config)
        comb.audio_extractor.load_state_dict(audio.extractor.state_dict())
        comb.spec_extractor.load_state_dict(spec.extractor.state_dict())
        return comb

    def freeze_features(self) -> None:
        """Stop training the extractors: no gradients, BatchNorm statistics kept (eval mode)."""
        self.features_frozen = True
        for extractor in (self.audio_extractor, self.spec_extractor):
            extractor.requires_grad_(False)
            extractor.eval()

    def train(self, mode: bool = True) -> CnnComb:
        super().train(mode)
        if self.features_frozen:
            self.audio_extractor.eval()
            self.spec_extractor.eval()
        return self

    def classify(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.joined_features(*inputs))

    def joined_features(self, audio: torch.Tensor, spectrogram: torch.Tensor) -> torch.Tensor:
        """The head's input [B, F]: the raw-audio features, then the spectrogram features, for
        the front end's outputs."""
        return torch.cat([self.audio_extractor(audio), self.spec_extractor(spectrogram)], dim=1)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """The head's input [B, F] for raw audio [B, window_samples]."""
        return self.joined_features(*self.front_end(audio))

    def forward(self, audio: torch.Tensor, zero_branch: str | None = None) -> torch.Tensor:
        """Logits [B, C] for raw audio [B, N].

        Args:
            audio: raw audio, float32 [B, window_samples].
            zero_branch: ``None`` (default) for normal use; ``"audio"`` sets the raw-audio input
                to zero and ``"spec"`` the spectrogram input, the ablation of the workshop
                paper's Figure 2.
        """
        if zero_branch not in (None, "audio", "spec"):
            raise ValueError(f"zero_branch must be None, 'audio' or 'spec', not {zero_branch!r}")
        normalized, spectrogram = self.front_end(audio)
        if zero_branch == "spec":
            spectrogram = torch.zeros_like(spectrogram)
        if zero_branch == "audio":
            normalized = torch.zeros_like(normalized)
        return self.classify(normalized, spectrogram)


_NETWORKS: dict[str, type[TaggerNetwork]] = {"audio": CnnAudio, "spec": CnnSpec, "comb": CnnComb}


def build_network(config: ModelConfig) -> TaggerNetwork:
    """A freshly initialised network of ``config.kind`` ("audio", "spec" or "comb")."""
    return _NETWORKS[config.kind](config)


def count_parameters(network: nn.Module, keras_style: bool = True) -> int:
    """Number of parameters of ``network``.

    Args:
        network: any torch module.
        keras_style: also count BatchNorm running means and variances (default true), as Keras'
            ``model.count_params()`` does, which is how the papers count; false counts only
            ``network.parameters()``.
    """
    total = sum(p.numel() for p in network.parameters())
    if keras_style:
        for module in network.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                total += module.running_mean.numel() + module.running_var.numel()
    return total


class _Rows2d(nn.Module):
    """cnn-audio's 1-D blocks run as 2-D layers over one row: [B, C, N] -> [B, C', N'].

    oneDNN's 2-D convolutions in the channels-last layout are several times faster on CPUs than
    its 1-D ones (with bfloat16 on AMX about 3x); the parameters are the 1-D layers' own, given a
    height of 1, so the results are the same.
    """

    def __init__(self, blocks: nn.Sequential) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for layer in blocks:
            if isinstance(layer, nn.Conv1d):  # as AudioFeatures makes them: "same" padding, stride 1
                (kernel,) = layer.kernel_size
                before = (kernel - 1) // 2  # torch's "same": one more sample after than before
                conv = nn.Conv2d(layer.in_channels, layer.out_channels, (1, kernel))
                conv.weight = nn.Parameter(layer.weight.detach().unsqueeze(2), requires_grad=False)
                conv.bias = nn.Parameter(layer.bias.detach(), requires_grad=False)
                layers += [nn.ZeroPad2d((before, kernel - 1 - before, 0, 0)), conv]
            elif isinstance(layer, nn.MaxPool1d):
                layers.append(nn.MaxPool2d((1, int(layer.kernel_size)), (1, int(layer.stride))))
            elif isinstance(layer, nn.BatchNorm1d):
                norm = nn.BatchNorm2d(layer.num_features, eps=layer.eps, affine=layer.affine)
                norm.load_state_dict(layer.state_dict())
                layers.append(norm)
            elif isinstance(layer, nn.ReLU):
                layers.append(nn.ReLU(inplace=True))
            else:
                raise TypeError(f"no 2-D form for {type(layer).__name__} in cnn-audio's blocks")
        self.layers = nn.Sequential(*layers).to(memory_format=torch.channels_last)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        rows = audio.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return self.layers(rows).squeeze(2)


class _ChannelsLast(nn.Module):
    """cnn-spec's blocks on channels-last input (oneDNN's fast layout on CPUs); same results."""

    def __init__(self, blocks: nn.Sequential) -> None:
        super().__init__()
        self.blocks = blocks.to(memory_format=torch.channels_last)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.blocks(spectrogram.contiguous(memory_format=torch.channels_last))


def cpu_inference_form(network: nn.Module) -> nn.Module:
    """A copy of a network laid out for inference on a CPU, in eval mode, without gradients.

    cnn-audio's 1-D blocks become 2-D layers over a single row and every 2-D activation is
    channels-last: on this project's 2-core CPUs the 2 s cnn-comb runs about 3x faster under
    bfloat16 autocast on AMX and 1.5x in fp32 (docs/speed.md). The copy holds the same
    parameters (later changes to ``network`` do not reach it) and gives the same outputs within
    float rounding. Training keeps the 1-D form: the state dict and the ONNX export are
    unchanged.
    """
    fast = copy.deepcopy(network)
    for module in fast.modules():
        if isinstance(module, AudioFeatures):
            module.blocks = _Rows2d(module.blocks)
        elif isinstance(module, SpecFeatures):
            module.blocks = _ChannelsLast(module.blocks)
    return fast.eval().requires_grad_(False)
