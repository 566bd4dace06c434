"""offline: the papers' training and evaluation pipeline for rtag models.

``python -m offline prepare|train|predict|evaluate|export|bench CONFIG`` (see docs/reproduce.md).
Library modules, in pipeline order: :mod:`offline.datasets` (readers), :mod:`offline.preprocess`
(40 dB trimming and the audio cache), :mod:`offline.folds`, :mod:`offline.augment`,
:mod:`offline.training` (three stages, resumable, torchrun), :mod:`offline.prediction` (test-time
crops and geometric means), :mod:`offline.metrics` (mAP@3), :mod:`offline.evaluation` and
:mod:`offline.plots` (reports). :mod:`offline.config` holds the experiment configuration.
"""
