"""Evidence accumulation ("cue") task of e-prop (Bellec et al. 2020, Fig. 3), after the authors' generator.

40 input channels in 4 groups of ``n_per_group`` = 10: left cue, right cue, recall, noise. A trial of
``T = n_cues t_interval + t_delay + t_recall`` ms (7 x 150 + 1050 + 150 = 2250 ms by default):

- cue k (k = 0..n_cues-1) occupies [k t_interval + (t_interval - t_cue), (k+1) t_interval): its group
  (left or right) fires Poisson at ``f0`` = 40 Hz; each trial draws P(left) = ``p_group`` or 1 - p_group;
- the recall group fires at ``f0`` during the last ``t_recall`` ms, the noise group at ``f_noise`` = 10 Hz
  throughout;
- label 1 if there were more right cues than left ones (``n_cues`` odd: no ties), else 0; the loss and the
  decision use the recall window (``mask``).

Step ``dt`` ms: every duration becomes ``round(duration / dt)`` steps and a rate ``f`` a spike probability
``f dt / 1000`` per step, so ``dt > 1`` gives a shortened but otherwise identical task.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch


@dataclass(frozen=True)
class CueTaskConfig:
    n_cues: int = 7
    t_cue: float = 100.0
    t_interval: float = 150.0
    t_delay: float = 1050.0
    t_recall: float = 150.0
    f0: float = 40.0
    f_noise: float = 10.0
    p_group: float = 0.3
    n_per_group: int = 10
    dt: float = 1.0

    def __post_init__(self) -> None:
        if self.n_cues < 1 or self.n_cues % 2 == 0:
            raise ValueError(f"CueTaskConfig.n_cues must be odd and >= 1 (no ties), got {self.n_cues}")
        if not 0 < self.t_cue <= self.t_interval:
            raise ValueError(f"CueTaskConfig.t_cue must be in (0, t_interval={self.t_interval}], got {self.t_cue}")
        if self.dt <= 0 or self.t_delay < 0 or self.t_recall < self.dt:
            raise ValueError(f"CueTaskConfig: need dt > 0, t_delay >= 0, t_recall >= dt; got dt={self.dt}, "
                             f"t_delay={self.t_delay}, t_recall={self.t_recall}")
        if max(self.f0, self.f_noise) * self.dt / 1000.0 > 1.0:
            raise ValueError(f"CueTaskConfig: rate x dt exceeds one spike per step (f0={self.f0} Hz, dt={self.dt} ms)")
        if not 0.0 <= self.p_group <= 1.0:
            raise ValueError(f"CueTaskConfig.p_group must be a probability, got {self.p_group}")

    def steps(self, duration_ms: float) -> int:
        return int(round(duration_ms / self.dt))

    @property
    def n_in(self) -> int:
        return 4 * self.n_per_group

    @property
    def T(self) -> int:
        return self.n_cues * self.steps(self.t_interval) + self.steps(self.t_delay) + self.steps(self.t_recall)


class CueBatch(NamedTuple):
    """``x`` (T, B, 40) float32 spikes, ``labels`` (B,) int64, ``mask`` (T,) float32 recall steps, ``cues``
    (B, n_cues) int64 (0 left, 1 right)."""

    x: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    cues: torch.Tensor


def cue_task(batch: int, cfg: CueTaskConfig = CueTaskConfig(), seed: int = 0) -> CueBatch:
    """A batch of cue-task trials drawn from ``seed`` (same seed, same batch)."""
    if batch < 1:
        raise ValueError(f"cue_task batch must be >= 1, got {batch}")
    rng = np.random.default_rng(seed)
    T, n, c = cfg.T, cfg.n_per_group, cfg
    p_left = np.where(rng.random(batch) < 0.5, c.p_group, 1.0 - c.p_group)
    cues = (rng.random((batch, c.n_cues)) >= p_left[:, None]).astype(np.int64)  # 1 = right
    rate = np.zeros((T, batch, 4 * n), dtype=np.float64)
    interval, cue_len = c.steps(c.t_interval), c.steps(c.t_cue)
    for k in range(c.n_cues):
        start = (k + 1) * interval - cue_len
        for side in (0, 1):
            rate[start:start + cue_len, cues[:, k] == side, side * n:(side + 1) * n] = c.f0
    recall = c.steps(c.t_recall)
    rate[T - recall:, :, 2 * n:3 * n] = c.f0
    rate[:, :, 3 * n:] = c.f_noise
    x = (rng.random(rate.shape) < rate * c.dt / 1000.0).astype(np.float32)
    labels = (cues.sum(1) > c.n_cues // 2).astype(np.int64)
    mask = np.zeros(T, dtype=np.float32)
    mask[T - recall:] = 1.0
    return CueBatch(torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(mask), torch.from_numpy(cues))
