"""Depth metrics of StereoSpike (NaN ground truth = invalid pixel, ignored), returned as pooled sums.

- MDE: mean ``|D_hat - D|`` over the valid pixels (metres), pooled over all pixels of a data set.
- One-pixel accuracy: fraction of valid pixels whose predicted depth gives a disparity within one pixel
  of the true one, ``|fb / D_hat - fb / D| < 1`` with ``fb = focal length (px) x baseline (m)``.
- Firing rate: density of nonzero entries of a spike (or spike-count) tensor.
"""
from __future__ import annotations

import torch

from spikes.models.stereospike.loss import masked_residual

# MVSEC indoor_flying left DAVIS: focal length about 226.4 px, baseline about 0.10 m (approximate).
MVSEC_FB = 22.6


def abs_error_sum(pred: torch.Tensor, gt: torch.Tensor) -> tuple[float, int]:
    """``(sum |D_hat - D|, n)`` over the valid pixels, for pooling the mean depth error over a data set."""
    res, _, n = masked_residual(pred, gt)
    return float(res.abs().sum()), int(n.sum())


def mean_depth_error(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """MDE: mean ``|D_hat - D|`` over the valid pixels (metres)."""
    s, n = abs_error_sum(pred, gt)
    if n == 0:
        raise ValueError("mean_depth_error: the ground truth has no valid (non-NaN) pixel")
    return s / n


def one_pixel_count(pred: torch.Tensor, gt: torch.Tensor, fb: float = MVSEC_FB) -> tuple[int, int]:
    """``(#valid pixels with |fb/D_hat - fb/D| < 1 px, #valid pixels)``; non-positive predictions fail."""
    if not fb > 0:
        raise ValueError(f"one_pixel_count: fb (focal x baseline) must be > 0, got {fb}")
    res, mask, n = masked_residual(pred, gt)
    gt = gt.reshape(res.shape)
    pred = pred.reshape(res.shape)
    safe_pred = torch.where(pred > 0, pred, torch.full_like(pred, float("inf")))
    disp_err = (fb / safe_pred - fb / torch.nan_to_num(gt, nan=1.0)).abs()
    ok = (disp_err < 1.0) & mask & (pred > 0)
    return int(ok.sum()), int(n.sum())


def firing_rate(s: torch.Tensor) -> float:
    """Density of nonzero entries of a spike (or spike-count) tensor."""
    return float((s != 0).float().mean())
