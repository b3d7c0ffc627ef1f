"""The LIF start state that cancels the bias during a population's latency (``spikes.deploy.populations.lif``):
hand-computed float cases, exact fixed-point trajectories, and torch == sim-float on a biased CuBa chain."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikes.deploy.backends import run
from spikes.deploy.kernels import lif_fixed_step
from spikes.deploy.network import lower
from spikes.deploy.populations.lif import start_state_fixed, start_state_float


def test_float_start_by_hand():
    # v = 0.5 v + 0.1 for two steps from v0 = -0.6: -0.2, then 0
    u0, v0 = start_state_float(np.array([0.1]), None, alpha=0.5, alpha_syn=0.0, latency=2, v_th=1.0)
    np.testing.assert_allclose(u0, [0.0])
    np.testing.assert_allclose(v0, [-0.6])
    # current c = 0.2 into i with alpha_syn = 0.5, latency 1: u0 = -0.2 / (0.5 * 0.5) = -0.8; after one step
    # u = -0.4, so at torch step 0 u = -0.2 + a and u + steady 0.4 = c + a, torch's i_0
    u0, v0 = start_state_float(np.array([0.4]), np.array([0.2]), alpha=0.9, alpha_syn=0.5, latency=1, v_th=1.0)
    np.testing.assert_allclose(u0, [-0.8])
    np.testing.assert_allclose(v0, [-(0.5 * -0.8 + 0.4) / 0.9])
    # no memory (alpha = 0): nothing to cancel on v; no latency: zero start
    assert start_state_float(np.array([0.3]), None, 0.0, 0.0, 3, 1.0)[1][0] == 0.0
    assert not np.any(start_state_float(np.array([0.3]), np.array([0.1]), 0.9, 0.5, 0, 1.0))


def test_float_start_never_above_threshold():
    """A negative bias over a long latency would need a start above v_th (a spike before any input): clipped."""
    _, v0 = start_state_float(np.array([-0.5]), None, alpha=0.5, alpha_syn=0.0, latency=4, v_th=1.0)
    assert v0[0] == 1.0


@pytest.mark.parametrize("latency", [1, 2, 3, 5])
def test_fixed_start_brings_v_back_to_zero(latency):
    rng = np.random.default_rng(latency)
    n = 200
    bias = rng.integers(-3000, 3000, n) << int(rng.integers(0, 4))
    bias[:10] = 0
    u_start = np.where(np.arange(n) < 5, 0, rng.integers(-40_000, 40_000, n))
    du, dv, vth = 1500, 600, 2000
    u0, v0 = start_state_fixed(bias, u_start, du, dv, vth, latency)
    assert np.array_equal(v0[:5], np.zeros(5)) and np.array_equal(u0[:5], np.zeros(5))   # nothing to cancel
    u, v, counts = u0.copy(), v0.copy(), np.zeros((n, 2), np.int64)
    for _ in range(latency):
        spikes = lif_fixed_step(np.zeros(n, np.int64), u, v, du, dv, vth, bias, counts)
        assert not spikes.any(), "no spike before the first input"
    capped = v0 == vth << 6          # a negative drive that would need a start above the threshold
    assert np.all(v[capped] < 0) and capped.mean() < 0.5
    assert np.abs(v[~capped]).max() <= 1, np.abs(v[~capped]).max()    # the nearest an integer start can get
    assert not counts.any()


def test_biased_cuba_chain_torch_equals_sim_float_from_step_zero():
    """Two CuBa layers with biases (latencies 1, 2): every aligned spike equals torch's, the first steps too."""
    from spikes.graph import Affine, Graph, Input, Neurons, Output
    from spikes.neurons.dynamics import NeuronParameters

    rng = np.random.default_rng(0)
    p = NeuronParameters(alpha=0.9, alpha_syn=0.7, v_th=1.0, reset="zero")
    nodes = {"input": Input((20,)), "fc1": Affine(rng.normal(0, 0.3, (30, 20)), rng.normal(0.08, 0.05, 30)),
             "lif1": Neurons((30,), p), "fc2": Affine(rng.normal(0, 0.3, (10, 30)), rng.normal(0.05, 0.05, 10)),
             "lif2": Neurons((10,), p), "output": Output((10,))}
    graph = Graph(nodes, [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])
    x = (rng.random((40, 8, 20)) < 0.2).astype(np.float64)
    net = lower(graph)
    ref = run(graph, torch.as_tensor(x), "torch")
    got = run(net, np.concatenate([x, np.zeros((2, 8, 20))]), "sim-float", align=True)
    for name in ("lif1", "lif2"):
        assert ref[name]["spikes"].any()
        assert np.array_equal(ref[name]["spikes"], got[name]["spikes"][:40]), name
