"""StereoSpike's training loss and depth metrics; invalid ground truth is NaN and is ignored everywhere.

Per sample, with residual ``R = D_hat - D`` over the ``n`` valid pixels (``D`` not NaN):

    L_reg    = (1/n) sum R^2 - lam (1/n^2) (sum R)^2       (scale-invariant; paper: lam = 1)
    L_smooth = (1/n) sum_valid (|Sobel_x R0| + |Sobel_y R0|) (R0 = R with invalid pixels set to 0,
                                                            3x3 Sobel, zero padding, summed over valid pixels)
    L        = sum over the readout scales of (L_reg + grad_weight L_smooth)    (grad_weight = 0.5)
             + beta sum over penalised tensors S of (1/(2K)) sum S^2            (K = S.numel())

With ``lam = 1`` (the paper's form) ``L_reg`` is the residual's variance, blind to a constant depth offset;
``lam < 1`` (Eigen et al. used 0.5) also penalises the mean error. Samples are averaged over the batch
(the paper used batch 1); samples without a valid pixel contribute 0.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


def _check(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if gt.dim() == 3:
        gt = gt.unsqueeze(1)
    if pred.dim() == 3:
        pred = pred.unsqueeze(1)
    if pred.shape != gt.shape or pred.dim() != 4 or pred.shape[1] != 1:
        raise ValueError(f"depth prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} must both be "
                         "(B, 1, H, W) or (B, H, W)")
    return pred, gt


def masked_residual(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(R0, mask, n)``: residual with invalid pixels zeroed (B,1,H,W), valid mask, valid count per sample (B,)."""
    pred, gt = _check(pred, gt)
    mask = ~torch.isnan(gt)
    res = torch.where(mask, pred - torch.nan_to_num(gt), torch.zeros_like(pred))
    return res, mask, mask.flatten(1).sum(1)


def _batch_mean(per_sample: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    ok = n > 0
    if not bool(ok.any()):
        return per_sample.sum() * 0.0
    return per_sample[ok].sum() / per_sample.shape[0]


def scale_invariant_loss(pred: torch.Tensor, gt: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """``(1/n) sum R^2 - lam (1/n^2) (sum R)^2`` over the valid pixels, averaged over the batch."""
    res, _, n = masked_residual(pred, gt)
    nf = n.clamp(min=1).to(res.dtype)
    s1 = res.flatten(1).sum(1)
    s2 = (res ** 2).flatten(1).sum(1)
    return _batch_mean(s2 / nf - lam * (s1 / nf) ** 2, n)


def gradient_matching_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``(1/n) sum_valid |Sobel_x R0| + |Sobel_y R0|``, averaged over the batch."""
    res, mask, n = masked_residual(pred, gt)
    kernel = torch.tensor([[SOBEL_X], [SOBEL_Y]], dtype=res.dtype, device=res.device)  # (2, 1, 3, 3)
    grad = F.conv2d(res, kernel, padding=1)
    per_sample = (grad.abs() * mask).flatten(1).sum(1)
    return _batch_mean(per_sample / n.clamp(min=1).to(res.dtype), n)


def spike_penalty(tensors: Sequence[torch.Tensor] | Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``sum over tensors S of (1/(2 K)) sum S^2`` with ``K = S.numel()``."""
    items = list(tensors.values()) if isinstance(tensors, Mapping) else list(tensors)
    if not items:
        raise ValueError("spike_penalty needs at least one tensor")
    return sum((s ** 2).sum() / (2 * s.numel()) for s in items)


def depth_loss(depths: Sequence[torch.Tensor], gt: torch.Tensor, grad_weight: float = 0.5, lam: float = 1.0,
               penalised: Sequence[torch.Tensor] | Mapping[str, torch.Tensor] | None = None,
               beta: float = 0.0) -> torch.Tensor:
    """Multi-scale loss: sum over ``depths`` (all readout scales, full resolution) of
    ``L_reg + grad_weight L_smooth``, plus ``beta`` times the spike penalty of ``penalised``."""
    if len(depths) == 0:
        raise ValueError("depth_loss needs at least one depth map")
    total = sum(scale_invariant_loss(d, gt, lam) + grad_weight * gradient_matching_loss(d, gt) for d in depths)
    if beta:
        if penalised is None:
            raise ValueError("depth_loss: beta > 0 needs the penalised spike tensors")
        total = total + beta * spike_penalty(penalised)
    return total
