"""Depth metrics of StereoSpike (NaN ground truth = invalid pixel, ignored), returned as pooled sums.

- MDE: mean ``|D_hat - D|`` over the valid pixels (metres), pooled over all pixels of a data set.
- One-pixel accuracy: fraction of valid pixels whose predicted depth gives a disparity within one pixel
  of the true one, ``|fb / D_hat - fb / D| < 1`` with ``fb = focal length (px) x baseline (m)``.
- Firing rate: density of nonzero entries of a spike (or spike-count) tensor.

:func:`evaluate` pools them over a data set (:class:`~spikes.models.stereospike.data.StereoData`, or anything with
``batches(batch_size)``) with the per-unit firing rates; :func:`mean_depth_baseline` is the MDE of predicting the
training set's mean depth everywhere.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

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


@torch.no_grad()
def evaluate(model, data, fb: float | None = None, batch_size: int = 8, progress: bool = False) -> dict:
    """MDE (m), one-pixel accuracy, per-scale MDE and, for the spiking model, per-unit firing rates (density of
    nonzero entries, pooled over the set), their mean, the encoder / decoder means and each unit's neurons per
    sample (``neurons``: C x H x W of its output).

    ``model``: a :class:`~spikes.models.stereospike.model.StereoUNet` (put in eval mode); ``fb``: focal length x
    baseline (px m) of the one-pixel accuracy (default: ``data.fb``, else :data:`MVSEC_FB`)."""
    fb = float(fb or getattr(data, "fb", None) or MVSEC_FB)
    model.eval()
    err, n, hit, samples = 0.0, 0, 0, 0
    scale_err = [0.0] * model.levels
    nz: dict[str, float] = {}
    numel: dict[str, int] = {}
    for x, gt in tqdm(data.batches(batch_size), total=math.ceil(len(data) / batch_size), desc="eval",
                      disable=not progress, leave=False):
        out = model(x)
        samples += x.shape[0]
        s, k = abs_error_sum(out.depth, gt)
        err, n = err + s, n + k
        hit += one_pixel_count(out.depth, gt, fb)[0]
        for i, d in enumerate(out.depths):
            scale_err[i] += abs_error_sum(d, gt)[0]
        for name, t in {**out.activations, **out.penalised}.items():
            nz[name] = nz.get(name, 0.0) + float((t != 0).sum())
            numel[name] = numel.get(name, 0) + t.numel()
    if n == 0:
        raise ValueError("evaluate: the data set has no valid depth pixel")
    rates = {k: nz[k] / numel[k] for k in nz}
    units = model.unit_names
    result = {"mde": err / n, "one_pixel_accuracy": hit / n, "n_pixels": n, "fb": fb,
              "mde_per_scale": {name: e / n for name, e in zip(model.depth_names, scale_err)}}
    if model.unit_op == "neuron":
        result["firing_rates"] = {k: rates[k] for k in units}
        result["neurons"] = {k: numel[k] // samples for k in units}
        result["count_densities"] = {k: rates[k] for k in rates if k not in units}
        result["mean_firing_rate"] = float(np.mean([rates[k] for k in units]))
        enc = [rates[k] for k in units if k.startswith(("bottom", "enc", "res"))]
        dec = [rates[k] for k in units if k.startswith("dec")]
        result["encoder_firing_rate"] = float(np.mean(enc))
        result["decoder_firing_rate"] = float(np.mean(dec))
    return result


def mean_depth_baseline(train, test) -> float:
    """MDE of predicting the training set's mean depth (``train.mean_depth()``) everywhere on ``test``."""
    mean = train.mean_depth()
    s, n = 0.0, 0
    for _, d in test.batches(64):
        a, b = abs_error_sum(torch.full_like(d, mean), d)
        s, n = s + a, n + b
    return s / n
