"""The embedded digits event set as spike sequences for recurrent SNNs: frames flattened to input channels.

Wraps :func:`spikes.datasets.digits.digits_frames` (x (N, T, 2, H, W) 0/1 float32, labels (N,)) and returns
``x`` as (T, N, 2 H W), time first, as ``spikes.models.rsnn.RSNN`` takes it.
"""
from __future__ import annotations

import torch

from spikes.datasets.digits import digits_frames


def digits_sequences(split: str = "train", n_time_bins: int = 20, seed: int = 0,
                     cache_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x (T, N, 2*H*W) float32, y (N,) int64)`` for ``split`` of the embedded digits set."""
    x, y = digits_frames(split, n_time_bins=n_time_bins, seed=seed, cache_dir=cache_dir)
    n, t = x.shape[:2]
    return x.reshape(n, t, -1).transpose(0, 1).contiguous(), y
