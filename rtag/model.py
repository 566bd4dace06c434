"""TaggerModel: a network with its labels and audio parameters, ready to tag audio."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rtag.audio_io import resample_clip
from rtag.bundle import Bundle, BundleError, default_hop_samples, read_bundle
from rtag.config import ModelConfig
from rtag.labels import top_labels
from rtag.networks import RumbleFilter, TaggerNetwork
from rtag.tta import tag_clip

if TYPE_CHECKING:
    from rtag.engines import Engine
    from rtag.files import TagRow

__all__ = ["DEFAULT_BUNDLE", "TaggerModel", "default_bundle_path", "load_model", "resolve_device"]

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default_model" / "rtag-comb-2s.rtag"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when torch sees a GPU, else the CPU; other values go to torch."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r} ({exc})") from None


class TaggerModel:
    """A tagging network with everything needed to use it.

    Attributes:
        network: the torch network (eval mode) mapping raw audio [B, N] to logits [B, C].
        config: its architecture and audio parameters.
        rumble_filter: the network's :class:`~rtag.networks.RumbleFilter` (``None`` without
            ``config.highpass_hz``), also applied before the energy weights of whole-file tags.
        labels: class names in output order.
        sample_rate_hz: the rate audio must have (44100 for the papers' models).
        window_samples: input length of one window (88200 for the 2 s model).
        hop_samples: default step between streaming windows (51200 for the 2 s model; a shorter
            window's model defaults to its window length, so no audio falls between windows).
        provenance: how the model was made (data, metrics, commit), from its bundle.
        device: where the network runs.
        source_path: the bundle it was loaded from (``None`` for an in-memory network).
        weights_sha256: the bundle's weights checksum (``None`` for an in-memory network).
    """

    def __init__(
        self,
        network: TaggerNetwork,
        config: ModelConfig,
        labels: Sequence[str],
        hop_samples: int | None = None,
        device: str | torch.device = "auto",
        provenance: dict | None = None,
        source_path: Path | None = None,
        weights_sha256: str | None = None,
    ) -> None:
        if len(labels) != config.num_classes:
            raise ValueError(f"{len(labels)} labels for a network with {config.num_classes} outputs")
        if hop_samples is None:
            hop_samples = default_hop_samples(config.window_samples)
        if hop_samples <= 0:
            raise ValueError(f"hop_samples must be positive, not {hop_samples}")
        self.device = resolve_device(device)
        self.network = network.to(self.device).eval()
        self.config = config
        self.rumble_filter = RumbleFilter.of(config)
        self.labels = tuple(labels)
        self.sample_rate_hz = config.sample_rate_hz
        self.window_samples = config.window_samples
        self.hop_samples = hop_samples
        self.provenance = dict(provenance or {})
        self.source_path = source_path
        self.weights_sha256 = weights_sha256
        self._engines: dict[tuple[str, str], Engine] = {}

    @classmethod
    def from_network(
        cls,
        network: TaggerNetwork,
        config: ModelConfig,
        labels: Sequence[str],
        hop_samples: int | None = None,
        device: str | torch.device = "auto",
    ) -> TaggerModel:
        """Wrap an in-memory network (e.g. just trained, or freshly built for tests)."""
        return cls(network, config, labels, hop_samples=hop_samples, device=device)

    @classmethod
    def from_bundle(cls, path: str | Path, device: str | torch.device = "auto") -> TaggerModel:
        """Load a model bundle (see :mod:`rtag.bundle`).

        Raises:
            BundleError: if the file is missing, corrupt, truncated or inconsistent.
        """
        return cls.from_read_bundle(read_bundle(path), device)

    @classmethod
    def from_read_bundle(cls, bundle: Bundle, device: str | torch.device = "auto") -> TaggerModel:
        """The model of a bundle already read by :func:`rtag.bundle.read_bundle` (its file is not read again)."""
        return cls(
            bundle.build_network(),
            bundle.config,
            bundle.labels,
            hop_samples=bundle.hop_samples,
            device=device,
            provenance=bundle.provenance,
            source_path=bundle.path,
            weights_sha256=bundle.weights_sha256,
        )

    @torch.inference_mode()
    def predict(self, audio: np.ndarray, network: torch.nn.Module | None = None) -> np.ndarray:
        """Class probabilities for windows of raw audio.

        Args:
            audio: float samples at ``sample_rate_hz``, shaped [B, window_samples] or
                [window_samples].
            network: the network to run (default: :attr:`network`; an engine passes its copy
                laid out for the device, :func:`rtag.networks.cpu_inference_form`).

        Returns:
            float32 probabilities [B, num_classes] (softmax; each row sums to one).

        Raises:
            ValueError: for another shape, or NaN or infinite samples.
        """
        batch = np.asarray(audio, dtype=np.float32)
        if batch.ndim == 1:
            batch = batch[None, :]
        if batch.ndim != 2 or batch.shape[1] != self.window_samples:
            raise ValueError(
                f"expected audio shaped [B, {self.window_samples}] or [{self.window_samples}], got {batch.shape}"
            )
        if not np.all(np.isfinite(batch)):
            raise ValueError(f"audio holds {int(np.count_nonzero(~np.isfinite(batch)))} NaN or infinite samples")
        inputs = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        return torch.softmax((self.network if network is None else network)(inputs).float(), dim=-1).cpu().numpy()

    def tag_clip(self, clip: np.ndarray, step_samples: int = 5120, batch_size: int = 32, *,
                 sample_rate_hz: int | None = None, weighting: str = "energy") -> np.ndarray:
        """Probabilities [num_classes] for a whole clip by the papers' test-time procedure.

        The clip is cut into crops (or, when shorter than a window, zero-padded at several
        positions) every ``step_samples``; the probabilities of all inputs are combined by their
        geometric mean, each weighed by its energy (``weighting="energy"``, default) or alike
        (``"equal"``, the papers'; see :mod:`rtag.tta`).

        Args:
            clip: 1-D float samples.
            step_samples: step between crops/positions at the model's rate (default 5120 as in
                the papers; 51200 is the technical report's efficient mode).
            batch_size: inputs per forward pass (default 32); the inputs are made one batch at
                a time, so memory does not grow with the clip's length.
            sample_rate_hz: the clip's rate; another rate than the model's
                (:attr:`sample_rate_hz`, 44100) is resampled first (soxr, high quality).
                ``None`` (default) means the model's rate.

        Raises:
            ValueError: for a rate outside 1-768 kHz, a clip that is not 1-D, or NaN samples.
        """
        if sample_rate_hz is not None and sample_rate_hz != self.sample_rate_hz:
            clip = resample_clip(clip, sample_rate_hz, self.sample_rate_hz)
        return tag_clip(self.predict, clip, self.window_samples, step_samples, batch_size, weighting,
                        self.rumble_filter)

    def engine(self, kind: str = "auto", precision: str = "auto") -> Engine:
        """The engine of ``kind`` and ``precision`` for this model (:func:`rtag.engines.create_engine`;
        default ``"auto"``: the fastest that runs here), made on first use and kept."""
        from rtag.engines import create_engine

        key = (kind, precision)
        if key not in self._engines:
            self._engines[key] = create_engine(self, kind, precision)
        return self._engines[key]

    def tag_file(self, path: str | Path, top_k: int = 3, *, step_samples: int = 5120,
                 engine: Engine | None = None, weighting: str = "energy") -> list[tuple[str, float]]:
        """The ``top_k`` (label, probability) pairs of an audio file by the papers' test-time
        procedure (:meth:`tag_clip` of the file, read block by block), on ``engine`` (default:
        :meth:`engine`, the auto engine). A file below the runtime's silence threshold gives
        ``[]`` (silence is not a sound).

        Raises:
            AudioFileError: if the file cannot be read (names it and the reason).
        """
        from rtag.files import FileError, tag_files

        (row,) = tag_files(engine or self.engine(), [path], step_samples, top_k, progress=False, weighting=weighting)
        if isinstance(row, FileError):
            raise row.error
        return row.top

    def timeline(self, path: str | Path, top_k: int = 3, *, engine: Engine | None = None) -> list[TagRow]:
        """One :class:`~rtag.files.TagRow` per streaming window of an audio file (the model's
        window every :attr:`hop_samples`, as a replay cuts them; silent windows have
        ``silent=True`` and no tags), on ``engine`` (default: :meth:`engine`, the auto engine).

        Raises:
            AudioFileError: if the file cannot be read (names it and the reason).
        """
        from rtag.files import FileError, timeline_files

        rows = []
        for row in timeline_files(engine or self.engine(), [path], top_k, progress=False):
            if isinstance(row, FileError):
                raise row.error
            rows.append(row)
        return rows

    def top_k(self, probs: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs of a probability vector."""
        return top_labels(probs, self.labels, k)


def load_model(path: str | Path | None = None, device: str | torch.device = "auto") -> TaggerModel:
    """Load a model bundle; with no path, the default model that ships inside the package.

    Args:
        path: a bundle file (``*.rtag``); ``None`` (default) for the bundled default model.
        device: ``"auto"`` (default: CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...

    Raises:
        BundleError: if the bundle is missing, corrupt or inconsistent.
    """
    return TaggerModel.from_bundle(default_bundle_path() if path is None else path, device=device)


def default_bundle_path() -> Path:
    """The default model bundle that ships inside the package.

    Raises:
        BundleError: if this installation carries no default model.
    """
    if not DEFAULT_BUNDLE.is_file():
        raise BundleError(
            f"{DEFAULT_BUNDLE}: no default model is bundled with this installation; "
            "pass the path of a model bundle"
        )
    return DEFAULT_BUNDLE
