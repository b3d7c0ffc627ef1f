"""The GT local learning rule (hand-computed) and the spike count falling while a network learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikes.learning.gt_rule import differential_q, gt_rule_update, random_coupling
from spikes.models.gt_network import GTNetwork, GTNetworkConfig, load_split


def test_rule_matches_hand_computed_update():
    q0 = torch.tensor([[0.0, 0.2], [0.2, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    # one sample: s+ = [1, 0], s- = [0, 1]; v+ = [0.1, -0.3], v- = [-0.5, 0.2] -> d = [0.6, -0.5]
    s = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
    v = torch.tensor([[0.1, -0.3, -0.5, 0.2]], dtype=torch.float64)
    theta = torch.tensor([0.1, 0.0], dtype=torch.float64)
    new = gt_rule_update(q0, s, v, eta=0.1, mask=mask, theta=theta)
    # delta_ij = (s+_i - s-_i)(d_j + theta_j): delta_01 = 1 * (-0.5) = -0.5, delta_10 = -1 * (0.6 + 0.1) = -0.7
    off = 0.2 + 0.1 * (-0.5 + -0.7) / 2
    assert new.flatten().tolist() == pytest.approx([0.0, off, off, 0.0], abs=1e-12)


def test_coupling_structure():
    q0, mask = random_coupling(40, std=0.5, density=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(q0, q0.T) and torch.equal(mask, mask.T)
    assert q0.diagonal().abs().sum() == 0 and 0.4 < mask.mean() < 0.6
    q = differential_q(q0)
    v = torch.randn(3, 80, dtype=torch.float64)
    d = v[:, :40] - v[:, 40:]
    qv = v @ q.T
    assert torch.allclose(qv[:, :40], d @ q0.T + v[:, :40]) and torch.allclose(qv[:, 40:], -d @ q0.T + v[:, 40:])


def test_training_reduces_spiking_on_wine():
    split = load_split("wine", seed=0)
    net = GTNetwork(split.x_train.shape[1], split.n_classes, GTNetworkConfig("network1", eta=(1e-3,)), seed=0)
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    codes = net.label_codes(y)
    before = float(net.run(x, codes).total.sum())
    gen = torch.Generator().manual_seed(0)
    per_epoch = [net.train_epoch(x, y, 8, gen) for _ in range(3)]
    after = float(net.run(x, codes).total.sum())
    assert after < 0.8 * before  # the whole training set, no learning during the measurement
    assert np.all(np.diff(per_epoch) < 0)  # falls epoch after epoch
    acc = float((net.predict(torch.from_numpy(split.x_test))[0] == torch.from_numpy(split.y_test)).double().mean())
    assert acc >= 0.85  # chance is about 0.4
