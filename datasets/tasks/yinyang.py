"""The Yin-Yang classification task (Kriener, Goeltz & Petrovici 2021), generated locally from a seed (no download).

Points ``(x, y)`` are drawn uniformly in the disc of radius ``R = 0.5`` around ``(0.5, 0.5)`` and labelled by the
yin-yang symbol drawn in it: with the centres of the two small dots ``c_left = (R/2, R)``, ``c_right = (3R/2, R)``
and their radius ``r = 0.1``,

- ``dot`` (class 2): within ``r`` of either centre;
- ``yin`` (class 0): the upper half ``y > R`` outside the right half-disc (``|p - c_right| > R/2``), plus the left
  half-disc ``r < |p - c_left| <= R/2``;
- ``yang`` (class 1): everything else in the disc.

Each sample first draws its class uniformly, then draws points until one falls in that class (so the classes are
balanced, as in the original generator). Features: ``(x, y, 1 - x, 1 - y)`` in [0, 1] (the usual symmetric
encoding, so every input carries the same total drive). A shallow network cannot solve it well (a linear
classifier reaches about 64 %), a hidden layer reaches about 95 % and more.
"""
from __future__ import annotations

import numpy as np

CLASSES = ["yin", "yang", "dot"]
R_BIG, R_SMALL = 0.5, 0.1
SPLIT_SIZES = {"train": 5000, "val": 1000, "test": 1000}
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}


def yin_yang_class(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Class (0 yin, 1 yang, 2 dot) of points inside the disc (module docstring)."""
    d_right = np.hypot(x - 1.5 * R_BIG, y - R_BIG)
    d_left = np.hypot(x - 0.5 * R_BIG, y - R_BIG)
    dot = (d_right <= R_SMALL) | (d_left <= R_SMALL)
    yin = ((y > R_BIG) & (d_right > 0.5 * R_BIG)) | ((d_left > R_SMALL) & (d_left <= 0.5 * R_BIG))
    return np.where(dot, 2, np.where(yin, 0, 1)).astype(np.int64)


def yin_yang(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` balanced samples from ``seed``: features ``(n, 4)`` float64 ``(x, y, 1 - x, 1 - y)``, labels ``(n,)``."""
    if n < 1:
        raise ValueError(f"yin_yang: n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 3, n)
    points = np.empty((n, 2))
    todo = np.arange(n)
    while todo.size:                               # rejection sampling, vectorised over the samples still open
        p = rng.random((todo.size, 2))
        inside = np.hypot(p[:, 0] - R_BIG, p[:, 1] - R_BIG) <= R_BIG
        hit = inside & (yin_yang_class(p[:, 0], p[:, 1]) == target[todo])
        points[todo[hit]] = p[hit]
        todo = todo[~hit]
    x, y = points[:, 0], points[:, 1]
    return np.stack([x, y, 1.0 - x, 1.0 - y], axis=1), target.astype(np.int64)


def yin_yang_split(split: str, seed: int = 0, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split ``train`` (5000), ``val`` (1000) or ``test`` (1000) of the set of ``seed``; each split has its own
    stream ``[seed, k]``, so the splits are disjoint draws."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"yin_yang_split: split must be one of {list(SPLIT_SIZES)}, got {split!r}")
    return yin_yang(n or SPLIT_SIZES[split], int(np.random.SeedSequence([seed, SPLIT_STREAMS[split]])
                                                  .generate_state(1)[0]))
