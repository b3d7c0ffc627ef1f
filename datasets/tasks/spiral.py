"""The four-arm spiral: a 2-D classification task no linear readout of the raw inputs solves (after EIANN's
``generate_spiral_data``: 4 arms, 500 points per arm, noise 0.16), generated from a seed, nothing downloaded.

Arm ``a`` (of ``n_arms``) at position ``u ~ U(0, 1)`` along the arm::

    radius = u,    angle = 2 pi a / n_arms + turns * 2 pi * u,
    (x1, x2) = radius (cos angle, sin angle) + noise * u * N(0, I)

(the noise grows with the radius, so the arms stay apart near the centre). Coordinates are mapped from
[-1.2, 1.2] to [0, 1] and clipped; each becomes two rates, an ON and an OFF channel ``(u, 1 - u)``, so the four
features ``(u1, u2, 1 - u1, 1 - u2)`` let networks with non-negative rates and weights (Dale's law) face every
direction (:func:`spiral_split`; :func:`spiral_points` gives the two coordinates). Splits: ``train``, ``val``
and ``test`` are drawn from different seeds (``[seed, split index]``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

SPLITS = ("train", "val", "test")


def spiral_points(n_per_arm: int = 500, n_arms: int = 4, noise: float = 0.16, turns: float = 0.75,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x (n_arms n_per_arm, 2) float64 in [0, 1], y (N,) int64)`` of the spiral (module docstring)."""
    if n_per_arm < 1 or n_arms < 2:
        raise ValueError(f"spiral_points: need n_per_arm >= 1 and n_arms >= 2, got {n_per_arm}, {n_arms}")
    if noise < 0:
        raise ValueError(f"spiral_points: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    u = rng.random((n_arms, n_per_arm))
    arm = np.repeat(np.arange(n_arms)[:, None], n_per_arm, 1)
    angle = 2 * math.pi * arm / n_arms + turns * 2 * math.pi * u
    xy = np.stack([u * np.cos(angle), u * np.sin(angle)], -1) + noise * u[..., None] * rng.standard_normal(
        (n_arms, n_per_arm, 2))
    x = np.clip((xy.reshape(-1, 2) + 1.2) / 2.4, 0.0, 1.0)
    return x, arm.reshape(-1).astype(np.int64)


def spiral_split(split: str, seed: int = 0, n_per_arm: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as tensors ``x (N, 4)`` ON/OFF rates (module docstring), ``y (N,)``: train 500 points per arm,
    val and test 125 (``n_per_arm`` overrides)."""
    if split not in SPLITS:
        raise ValueError(f"spiral: split {split!r} is unknown: expected one of {SPLITS}")
    n = n_per_arm or (500 if split == "train" else 125)
    x, y = spiral_points(n, seed=int(np.random.SeedSequence([seed, SPLITS.index(split)]).generate_state(1)[0]))
    return torch.from_numpy(np.concatenate([x, 1.0 - x], 1)), torch.from_numpy(y)
