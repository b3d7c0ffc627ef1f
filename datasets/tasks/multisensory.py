"""The multisensory integration task (Raposo et al. 2012; the RNN version of Song, Yang & Wang 2016, used by Zou,
Li & Huang 2023), generated locally from a seed (no download).

A trial shows a stream of events at a rate ``f`` (Hz) through the visual channel, the auditory channel or both
(modality ``v``, ``a``, ``va``, each with probability 1/3; ``f`` uniform over ``rates``); the network answers
"high" (class 1) if ``f > boundary`` else "low" (class 0), after the stimulus.

Inputs (5 channels per step of ``dt_ms``): visual+ and visual- , auditory+ and auditory-, and a start cue.
During the stimulus, a shown modality's "+" channel carries Bernoulli events with probability ``f dt`` per step
and its "-" channel events with probability ``(f_min + f_max - f) dt`` (the oppositely tuned pair of the RNN
task); a modality not shown is silent. The cue is 1 during fixation and stimulus, 0 in the decision period (the
go signal). Periods: fixation ``fixation_ms``, stimulus ``stimulus_ms``, decision ``decision_ms``; the loss and
the choice use the decision period (:func:`decision_mask`).

Both modalities carry independent events at the same rate, so a trial with both holds twice the evidence: an
ideal observer's psychometric threshold (the sd of a cumulative Gaussian fitted to P(high) vs f) falls by
sqrt(2) from ``v`` or ``a`` to ``va``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODALITIES = ("v", "a", "va")
CLASSES = ["low", "high"]
CHANNELS = ("visual+", "visual-", "auditory+", "auditory-", "cue")
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class MultisensoryConfig:
    """Timing and rates of the task (module docstring); the defaults are the RNN task's."""

    dt_ms: float = 20.0
    fixation_ms: float = 100.0
    stimulus_ms: float = 1000.0
    decision_ms: float = 300.0
    rates: tuple[float, ...] = (9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0)
    boundary: float = 12.5

    def __post_init__(self) -> None:
        if self.dt_ms <= 0 or self.fixation_ms < 0 or self.stimulus_ms <= 0 or self.decision_ms <= 0:
            raise ValueError(f"MultisensoryConfig: dt_ms, stimulus_ms, decision_ms must be > 0 and fixation_ms >= 0, "
                             f"got {self}")
        if not self.rates or max(self.rates) + min(self.rates) - min(self.rates) > 1000.0 / self.dt_ms:
            raise ValueError(f"MultisensoryConfig: rates {self.rates} need f dt <= 1 (dt_ms {self.dt_ms})")

    def steps(self, ms: float) -> int:
        return int(round(ms / self.dt_ms))

    @property
    def T(self) -> int:
        return self.steps(self.fixation_ms) + self.steps(self.stimulus_ms) + self.steps(self.decision_ms)


def decision_mask(config: MultisensoryConfig) -> np.ndarray:
    """``(T,)`` float32: 1 in the decision period."""
    mask = np.zeros(config.T, np.float32)
    mask[config.T - config.steps(config.decision_ms):] = 1.0
    return mask


def label_of(rate: np.ndarray, boundary: float) -> np.ndarray:
    """1 ("high") where ``rate > boundary``, else 0."""
    return (np.asarray(rate) > boundary).astype(np.int64)


def trials(modality: np.ndarray, rate: np.ndarray, seed: int, config: MultisensoryConfig = MultisensoryConfig()
           ) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(n, T, 5)`` float32 and labels ``(n,)`` of the trials with the given modality indices (into
    ``MODALITIES``) and rates, events drawn from ``seed``."""
    modality, rate = np.asarray(modality, np.int64), np.asarray(rate, np.float64)
    n, c = len(modality), config
    rng = np.random.default_rng(seed)
    fix, stim = c.steps(c.fixation_ms), c.steps(c.stimulus_ms)
    x = np.zeros((n, c.T, len(CHANNELS)), np.float32)
    x[:, :fix + stim, 4] = 1.0
    p_pos = rate * c.dt_ms / 1000.0
    p_neg = (min(c.rates) + max(c.rates) - rate) * c.dt_ms / 1000.0
    events = rng.random((n, stim, 4)) < np.stack([p_pos, p_neg, p_pos, p_neg], 1)[:, None, :]
    shown = np.stack([modality != 1, modality != 1, modality != 0, modality != 0], 1)      # v: 0, a: 1, va: 2
    x[:, fix:fix + stim, :4] = events & shown[:, None, :]
    return x, label_of(rate, c.boundary)


def random_trials(n: int, seed: int, config: MultisensoryConfig = MultisensoryConfig()):
    """``n`` trials with modality and rate drawn uniformly from ``seed``: ``(x, y, modality, rate)``."""
    if n < 1:
        raise ValueError(f"random_trials: n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    modality = rng.integers(0, len(MODALITIES), n)
    rate = np.asarray(config.rates)[rng.integers(0, len(config.rates), n)]
    x, y = trials(modality, rate, int(rng.integers(2**31)), config)
    return x, y, modality, rate


def condition_grid(per_condition: int, config: MultisensoryConfig = MultisensoryConfig()):
    """``(modality, rate)`` of ``per_condition`` trials for every modality and rate, in that order."""
    modality = np.repeat(np.arange(len(MODALITIES)), len(config.rates) * per_condition)
    rate = np.tile(np.repeat(np.asarray(config.rates, np.float64), per_condition), len(MODALITIES))
    return modality, rate


def multisensory_split(split: str, seed: int = 0, n: int = 0, config: MultisensoryConfig = MultisensoryConfig()):
    """``train``: ``n`` (default 6000) random trials; ``val`` / ``test``: the condition grid with ``n // 24``
    (default 50) trials per modality and rate, for psychometric curves. Each split has its own stream
    ``[seed, k]``. Returns ``(x, y, modality, rate)``."""
    if split not in SPLIT_STREAMS:
        raise ValueError(f"multisensory_split: split must be one of {list(SPLIT_STREAMS)}, got {split!r}")
    stream = int(np.random.SeedSequence([seed, SPLIT_STREAMS[split]]).generate_state(1)[0])
    if split == "train":
        return random_trials(n or 6000, stream, config)
    per = max(1, (n or 50 * len(MODALITIES) * len(config.rates)) // (len(MODALITIES) * len(config.rates)))
    modality, rate = condition_grid(per, config)
    x, y = trials(modality, rate, stream, config)
    return x, y, modality, rate
