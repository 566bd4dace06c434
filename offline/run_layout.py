"""Where a run keeps its files, in one place::

    <run_dir>/config.yaml                 resolved experiment config
    <run_dir>/labels.json                 class names in output order (from the data)
    <run_dir>/folds.csv                   clip_id,label,fold of every training clip
    <run_dir>/<stage>/fold<k>/last.pt     full training state (resume)
    <run_dir>/<stage>/fold<k>/best.pt     weights of the lowest validation loss
    <run_dir>/<stage>/fold<k>/config.yaml resolved config of that stage (model.kind = stage)
    <run_dir>/<stage>/fold<k>/metrics.{jsonl,csv}   one row per epoch
    <run_dir>/predictions/<name>.{csv,npy}          test predictions (top 3 and probabilities)
    <run_dir>/report/                     results.{json,md}, per-class table, plots, submission.csv
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

__all__ = ["RunLayout"]


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """Paths inside one run directory.

    Attributes:
        root: the run directory (``ExperimentConfig.run_dir``).
    """

    root: Path

    @property
    def config_path(self) -> Path:
        """The run's resolved experiment config."""
        return self.root / "config.yaml"

    @property
    def labels_path(self) -> Path:
        """The class names, a JSON list."""
        return self.root / "labels.json"

    @property
    def folds_path(self) -> Path:
        """Fold of every training clip (CSV)."""
        return self.root / "folds.csv"

    @property
    def predictions_dir(self) -> Path:
        """Folder of the prediction sets."""
        return self.root / "predictions"

    @property
    def report_dir(self) -> Path:
        """Folder of the evaluation report."""
        return self.root / "report"

    def fold_dir(self, stage: str, fold: int) -> Path:
        """Folder of one stage's model for one fold."""
        return self.root / stage / f"fold{fold}"

    def best_checkpoint(self, stage: str, fold: int) -> Path:
        """Weights of the lowest validation loss."""
        return self.fold_dir(stage, fold) / "best.pt"

    def last_checkpoint(self, stage: str, fold: int) -> Path:
        """Full training state of the last finished epoch."""
        return self.fold_dir(stage, fold) / "last.pt"

    def trained_folds(self, stage: str) -> list[int]:
        """Folds of ``stage`` that have a best checkpoint, in order."""
        stage_dir = self.root / stage
        if not stage_dir.is_dir():
            return []
        folds = [int(p.name[4:]) for p in stage_dir.glob("fold*") if p.name[4:].isdigit() and (p / "best.pt").exists()]
        return sorted(folds)

    def read_labels(self) -> tuple[str, ...]:
        """The run's class names.

        Raises:
            FileNotFoundError: if the run has not been trained (names the missing file).
        """
        if not self.labels_path.exists():
            raise FileNotFoundError(f"{self.labels_path}: not found; train this run first")
        return tuple(json.loads(self.labels_path.read_text(encoding="utf-8")))
