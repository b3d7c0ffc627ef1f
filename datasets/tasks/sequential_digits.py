"""Sequential digits: scikit-learn's 8x8 handwritten digits read row by row, one row of 8 pixels per step (the
small-scale counterpart of row-wise MNIST, 28 steps of 28 pixels). The split is the ``digits`` tabular set's
(:func:`spikes.datasets.tabular.load_split`: stratified, ``random_state = seed``, min-max scaled on train), so the
two sets hold the same samples; ``x (N, 8, 8)`` with ``x[n, t]`` row ``t``.
"""
from __future__ import annotations

import numpy as np

from spikes.datasets.tabular import load_split

ROWS, COLUMNS = 8, 8


def sequential_digits_split(split: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x (N, 8, 8) float32 rows as steps, y (N,) int64)`` of split ``train`` / ``val`` / ``test``."""
    s = load_split("digits", seed=seed)
    try:
        x, y = {"train": (s.x_train, s.y_train), "val": (s.x_val, s.y_val), "test": (s.x_test, s.y_test)}[split]
    except KeyError:
        raise ValueError(f"sequential_digits_split: split must be 'train', 'val' or 'test', got {split!r}") from None
    return np.ascontiguousarray(x.reshape(-1, ROWS, COLUMNS), np.float32), np.asarray(y, np.int64)
