"""StereoSpike loss and metrics against hand computations on the valid pixels (NaN ground truth ignored)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikes.models.stereospike.loss import (depth_loss, gradient_matching_loss, scale_invariant_loss,
                                            spike_penalty)
from spikes.models.stereospike.metrics import mean_depth_error, one_pixel_count

SX = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)
SY = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)


def hand_loss(pred: np.ndarray, gt: np.ndarray, lam: float, grad_weight: float) -> float:
    """Per image: loops over the valid pixels only; residual 0 outside them (and outside the image)."""
    h, w = gt.shape
    valid = [(y, x) for y in range(h) for x in range(w) if not np.isnan(gt[y, x])]
    n = len(valid)
    r = {(y, x): pred[y, x] - gt[y, x] for (y, x) in valid}
    reg = sum(v * v for v in r.values()) / n - lam * (sum(r.values()) / n) ** 2
    smooth = 0.0
    for (y, x) in valid:
        gx = gy = 0.0
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                v = r.get((y + dy, x + dx), 0.0)  # cross-correlation, as conv2d
                gx += SX[dy + 1, dx + 1] * v
                gy += SY[dy + 1, dx + 1] * v
        smooth += abs(gx) + abs(gy)
    return reg + grad_weight * smooth / n


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    gt = rng.uniform(1, 5, (2, 1, 7, 9))
    gt[rng.random(gt.shape) < 0.3] = np.nan
    gt[0, 0, 0, :] = np.nan
    pred = rng.uniform(1, 5, gt.shape)
    return pred, gt


def test_loss_ignores_nan_pixels_and_matches_hand_computation(pair):
    pred, gt = pair
    depths = [torch.tensor(pred, requires_grad=True), torch.tensor(pred + 0.3)]
    got = depth_loss(depths, torch.tensor(gt), grad_weight=0.5, lam=1.0)
    want = sum(np.mean([hand_loss(p[b, 0], gt[b, 0], 1.0, 0.5) for b in range(2)]) for p in (pred, pred + 0.3))
    assert float(got.detach()) == pytest.approx(want, rel=1e-10)
    got.backward()
    g = depths[0].grad.numpy()
    assert np.all(g[np.isnan(gt)] == 0)  # no gradient reaches invalid pixels
    # values predicted at invalid pixels do not matter
    changed = pred.copy()
    changed[np.isnan(gt)] = 1e6
    assert float(depth_loss([torch.tensor(changed)], torch.tensor(gt))) == pytest.approx(
        float(depth_loss([torch.tensor(pred)], torch.tensor(gt))), rel=1e-12)


def test_scale_invariant_terms(pair):
    pred, gt = pair
    p, g = torch.tensor(pred), torch.tensor(gt)
    # lam = 1: the variance of the residual, blind to a constant offset; lam = 0: plain masked MSE
    assert float(scale_invariant_loss(p + 2.0, g, 1.0)) == pytest.approx(float(scale_invariant_loss(p, g, 1.0)))
    for lam in (0.0, 0.5):
        want = np.mean([hand_loss(pred[b, 0], gt[b, 0], lam, 0.0) for b in range(2)])
        assert float(scale_invariant_loss(p, g, lam)) == pytest.approx(want, rel=1e-10)
    # gradient matching alone (hand loop with the regression term removed)
    want = np.mean([hand_loss(pred[b, 0], gt[b, 0], 1.0, 1.0) - hand_loss(pred[b, 0], gt[b, 0], 1.0, 0.0)
                    for b in range(2)])
    assert float(gradient_matching_loss(p, g)) == pytest.approx(want, rel=1e-10)


def test_spike_penalty_by_hand():
    a = torch.tensor([[0.0, 1.0], [2.0, 1.0]])  # sum S^2 = 6, K = 4
    b = torch.tensor([1.0, 0.0, 0.0])           # sum S^2 = 1, K = 3
    assert float(spike_penalty([a, b])) == pytest.approx(6 / 8 + 1 / 6)
    assert float(spike_penalty({"a": a})) == pytest.approx(6 / 8)
    base = depth_loss([torch.ones(1, 1, 3, 3)], torch.full((1, 3, 3), 2.0))
    with_pen = depth_loss([torch.ones(1, 1, 3, 3)], torch.full((1, 3, 3), 2.0), penalised=[a], beta=2.0)
    assert float(with_pen - base) == pytest.approx(2.0 * 6 / 8)


def test_metrics_by_hand():
    gt = torch.tensor([[[1.0, 2.0], [float("nan"), 4.0]]])
    pred = torch.tensor([[[1.5, 2.0], [100.0, 3.0]]])
    assert mean_depth_error(pred, gt) == pytest.approx((0.5 + 0 + 1) / 3)
    # fb = 10: disparities 10, 5, 2.5 vs predicted 6.67, 5, 3.33 -> errors 3.33, 0, 0.83 -> 2 of 3 within 1 px
    assert one_pixel_count(pred, gt, fb=10.0) == (2, 3)
    with pytest.raises(ValueError, match="no valid"):
        mean_depth_error(pred, torch.full_like(gt, float("nan")))
