"""Pattern generation task of e-prop (Bellec et al. 2020, Fig. 2): frozen Poisson input -> a sum of sines.

``n_in`` = 100 inputs fire Poisson at ``f_in`` = 50 Hz (one frozen draw); the target over ``duration`` =
1000 ms is ``y*(t) = sum_m A_m sin(2 pi t / P_m + phi_m)`` with periods P = (1000, 500, 333, 200) ms,
amplitudes A_m ~ U(0.5, 2) and phases phi_m ~ U(0, 2 pi), all drawn from ``seed``. Step ``dt`` ms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PatternTaskConfig:
    n_in: int = 100
    f_in: float = 50.0
    duration: float = 1000.0
    periods: tuple[float, ...] = (1000.0, 500.0, 333.0, 200.0)
    n_out: int = 1
    dt: float = 1.0

    def __post_init__(self) -> None:
        if self.n_in < 1 or self.n_out < 1 or self.dt <= 0 or self.duration < self.dt:
            raise ValueError(f"PatternTaskConfig: need n_in, n_out >= 1 and duration >= dt > 0, got {self}")
        if self.f_in * self.dt / 1000.0 > 1.0:
            raise ValueError(f"PatternTaskConfig: f_in={self.f_in} Hz x dt={self.dt} ms exceeds a spike per step")

    @property
    def T(self) -> int:
        return int(round(self.duration / self.dt))


def pattern_task(cfg: PatternTaskConfig = PatternTaskConfig(), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x (T, 1, n_in) float32 spikes, target (T, 1, n_out) float32)`` for ``seed``."""
    rng = np.random.default_rng(seed)
    T = cfg.T
    x = (rng.random((T, 1, cfg.n_in)) < cfg.f_in * cfg.dt / 1000.0).astype(np.float32)
    t = np.arange(1, T + 1) * cfg.dt
    target = np.zeros((T, 1, cfg.n_out))
    for k in range(cfg.n_out):
        amp = rng.uniform(0.5, 2.0, len(cfg.periods))
        phase = rng.uniform(0.0, 2 * np.pi, len(cfg.periods))
        for a, p, ph in zip(amp, cfg.periods, phase):
            target[:, 0, k] += a * np.sin(2 * np.pi * t / p + ph)
    return torch.from_numpy(x), torch.from_numpy(target.astype(np.float32))
