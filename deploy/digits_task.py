"""A seconds-scale spiking classification task for deploy checks: scikit-learn's 8x8 digits, rate coded.

``x[t, b, k] ~ Bernoulli(rate * pixel[b, k] / 16)`` for T steps (deterministic per seed); 1400 training
and 397 test samples (fixed shuffle). Used by the tests and the notebook; no download (sklearn ships it; imported,
heavy, only when the split is made).
"""
from __future__ import annotations

import numpy as np


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train pixels in [0, 1] (1400, 64), labels, test pixels (397, 64), labels)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = np.random.default_rng(seed).permutation(len(d.target))
    x, y = d.data[idx] / 16.0, d.target[idx]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def encode(pixels: np.ndarray, steps: int = 16, rate: float = 0.5, seed: int = 0) -> np.ndarray:
    """Bernoulli spike trains (T, B, 64), float32."""
    rng = np.random.default_rng(seed)
    return (rng.random((steps, *pixels.shape)) < pixels[None] * rate).astype(np.float32)
