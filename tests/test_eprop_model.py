"""RSNN dynamics by hand (e-prop's equations), no self-connections, refractoriness, bad input."""
from __future__ import annotations

import math

import pytest
import torch

from spikes.models.rsnn import RSNN, RSNNConfig


def _one_neuron(beta: float = 0.0, n_ref: int = 0) -> RSNN:
    cfg = RSNNConfig(n_in=1, n_rec=1, n_out=1, n_adaptive=1 if beta else 0, tau_m=10.0, tau_a=100.0,
                     tau_out=5.0, v_th=1.0, n_ref=n_ref, beta=beta or None)
    net = RSNN(cfg, dtype=torch.float64)
    with torch.no_grad():
        net.w_in.fill_(0.7)
        net.w_out.fill_(2.0)
        net.b_out.fill_(0.1)
    return net


def _reference(x: list[float], w: float, alpha: float, rho: float, kappa: float, beta: float, n_ref: int):
    """The e-prop recurrence in plain Python (one neuron, v_th = 1, readout weight 2, bias 0.1)."""
    v = a = z = y = 0.0
    r = 0
    zs, ys = [], []
    for xt in x:
        v = alpha * v + w * xt - z
        a = rho * a + z
        z = 1.0 if (v - (1.0 + beta * a) > 0 and r == 0) else 0.0
        r = n_ref if z else max(r - 1, 0)
        y = kappa * y + 2.0 * z + 0.1
        zs.append(z)
        ys.append(y)
    return zs, ys


@pytest.mark.parametrize("beta,n_ref", [(0.0, 0), (0.0, 3), (0.5, 2)])
def test_single_neuron_matches_hand_recurrence(beta, n_ref):
    net = _one_neuron(beta, n_ref)
    x = [1.0] * 30 + [0.0] * 5 + [1.0] * 15
    y, z = net(torch.tensor(x, dtype=torch.float64).view(-1, 1, 1))
    c = net.cfg
    zs, ys = _reference(x, 0.7, math.exp(-0.1), math.exp(-0.01), math.exp(-0.2), beta, n_ref)
    assert sum(zs) >= 4
    assert z.view(-1).tolist() == zs
    assert torch.allclose(y.view(-1), torch.tensor(ys, dtype=torch.float64), atol=1e-12)
    assert c.alpha == pytest.approx(math.exp(-0.1))


def test_refractory_gap_and_zero_pseudo_derivative():
    net = _one_neuron(0.0, n_ref=4)
    with torch.no_grad():
        net.w_in.fill_(5.0)  # above threshold every step: spikes limited only by refractoriness
    state = net.initial_state(1)
    zs, psis = [], []
    for _ in range(20):
        out, state = net.step(torch.ones(1, 1, dtype=torch.float64), state)
        zs.append(int(out.z))
        psis.append(float(out.psi))
    spikes = [t for t, s in enumerate(zs) if s]
    assert all(b - a == 5 for a, b in zip(spikes, spikes[1:])) and len(spikes) == 4
    for t in range(spikes[0] + 1, spikes[0] + 5):
        assert psis[t] == 0.0


def test_no_self_connections_and_default_beta():
    cfg = RSNNConfig(n_in=3, n_rec=6, n_out=2, n_adaptive=2)
    net = RSNN(cfg, seed=3)
    assert torch.all(net.w_rec.diagonal() == 0)
    with torch.no_grad():
        net.w_rec.fill_(1.0)
    assert torch.all(net.recurrent_weight().diagonal() == 0)
    assert net.betas.tolist()[:4] == [0.0] * 4
    assert net.betas[4].item() == pytest.approx(1.7 * (1 - math.exp(-1 / 2000)) / (1 - math.exp(-1 / 20)), rel=1e-6)
    assert torch.equal(RSNN(cfg, seed=3).w_in, net.w_in)  # seeded


def test_bad_config_and_input_are_named():
    with pytest.raises(ValueError, match="n_adaptive"):
        RSNNConfig(n_in=2, n_rec=3, n_out=1, n_adaptive=4)
    with pytest.raises(ValueError, match="n_ref"):
        RSNNConfig(n_in=2, n_rec=3, n_out=1, n_ref=-1)
    net = RSNN(RSNNConfig(n_in=2, n_rec=3, n_out=1))
    with pytest.raises(ValueError, match="n_in=2"):
        net(torch.zeros(5, 1, 3))
