"""The training corpus of the bundled model: real recordings first, split by recording group,
with General MIDI renders as a supplement (``python -m offline build-corpus``; docs/corpus.md).

Modules by role: :mod:`~offline.corpus.config` (the YAML config), :mod:`~offline.corpus.real`
(the real-data manifest and its group-disjoint split), :mod:`~offline.corpus.keystrokes` (typing
sequences from single key presses), :mod:`~offline.corpus.recipes`, :mod:`~offline.corpus.patterns`,
:mod:`~offline.corpus.fonts` and :mod:`~offline.corpus.render` (General MIDI renders),
:mod:`~offline.corpus.build` (the
plan), :mod:`~offline.corpus.manifest` (manifest and summary), :mod:`~offline.corpus.command`
(the ``build-corpus`` command), :mod:`~offline.corpus.report` (held-out figures of a trained
model) and :mod:`~offline.corpus.demo` (the demo recording).
"""
