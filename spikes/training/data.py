"""Datasets by name for training, and the seeded batch order that makes mid-epoch resume exact.

Every dataset is a pair of in-memory tensors ``x`` float32 ``(N, T, C, H, W)``, ``y`` int64 ``(N,)``; the
model receives batches time first ``(T, B, C, H, W)``.

- ``digits-events``: :func:`spikes.datasets.digits.digits_frames` (simulated-DVS handwritten digits, 2x34x34,
  10 classes, 1438 train / 359 test, generated from scikit-learn's digits and cached on first use).
- ``synthetic``: a small generated set for tests and smoke runs: class ``k`` (of 4) fires a 4x4 patch at
  position ``k`` of a 2x2 grid on a 2x12x12 sensor with probability 0.6 per pixel and step (channel
  ``k % 2``), plus background events with probability 0.02. Train and test use different seeds.
"""
from __future__ import annotations

import math

import numpy as np
import torch

DATASETS = ("digits-events", "synthetic")


def synthetic_frames(split: str, n_time_bins: int, seed: int = 0, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``synthetic`` set (see module docstring): ``x`` float32 (N, T, 2, 12, 12), ``y`` int64 (N,)."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: expected 'train' or 'test'")
    n = n or (256 if split == "train" else 64)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    y = rng.integers(0, 4, n)
    x = (rng.random((n, n_time_bins, 2, 12, 12)) < 0.02)
    for i, k in enumerate(y):
        r, c = 2 + 6 * (k // 2), 2 + 6 * (k % 2)
        x[i, :, k % 2, r:r + 4, c:c + 4] |= rng.random((n_time_bins, 4, 4)) < 0.6
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def load_split(name: str, split: str, n_time_bins: int, seed: int = 0, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x (N, T, C, H, W) float32, y (N,) int64)`` of dataset ``name``; ``limit > 0`` keeps the first N samples."""
    if name == "digits-events":
        from spikes.datasets.digits import digits_frames
        x, y = digits_frames(split, n_time_bins=n_time_bins, seed=seed)
    elif name == "synthetic":
        x, y = synthetic_frames(split, n_time_bins, seed)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}")
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y


def batch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Sample indices of every batch of ``epoch``: a permutation that depends only on (seed, epoch).

    Written instead of a DataLoader + sampler because the order must be a pure function of the position
    for exact mid-epoch resume; a resumed run skips the batches it already did. The last batch may be short.
    """
    g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    perm = torch.randperm(n, generator=g)
    return [perm[i * batch_size:(i + 1) * batch_size] for i in range(math.ceil(n / batch_size))]


def time_first(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, ...)`` -> ``(T, B, ...)`` (contiguous)."""
    return x.transpose(0, 1).contiguous()
