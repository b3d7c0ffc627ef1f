"""Task generators for recurrent SNNs (e-prop's tasks), seeded and deterministic, nothing downloaded.

- :func:`cue_task <spikes.datasets.tasks.cue.cue_task>`: evidence accumulation (left/right cues, delay, recall);
  :class:`CueSet <spikes.datasets.tasks.cue.CueSet>` the same task as a data set of the trainer.
- :func:`pattern_task <spikes.datasets.tasks.pattern.pattern_task>`: frozen Poisson input -> sum of 4 sines.
(The embedded digits event set reaches recurrent SNNs as a data set of the trainer: ``digits-events``, flattened
per step by the ``rsnn`` model kind.)
"""
from __future__ import annotations

from .cue import CueBatch, CueSet, CueTaskConfig, cue_task
from .pattern import PatternTaskConfig, pattern_task

__all__ = ["CueBatch", "CueSet", "CueTaskConfig", "cue_task", "PatternTaskConfig", "pattern_task"]
