"""The GT population kinds (``gt``, ``gt_potential``): hand-computed fixed-point steps, the graph node against
``gt_step``, ``GTNetwork.to_graph`` against ``GTNetwork`` itself, ``sim-float`` against the torch graph with the same
timing, ``sim`` against ``lava-fixed`` bit for bit and ``sim-float`` against ``lava-float`` on small random GT
graphs, serialisation and bad input."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from spikes.deploy.backends import run
from spikes.graph import GT, Affine, Graph, GTPotential, Input, Output
from spikes.deploy.network import lower
from spikes.deploy.populations import kind_of
from spikes.deploy.gt_kernels import gt_fixed_run
from spikes.deploy.quantize import quantize
from spikes.deploy.serialize import load_qnetwork, save_qnetwork
from spikes.models.gt_network import GTNetwork, GTNetworkConfig
from spikes.neurons.growth_transform import GTParameters, Modulation, gt_initial_state, gt_step, run_gt
from spikes.pipeline.gt import spike_counts

T = 30


def _sym(rng, n, std=0.3):
    w = rng.normal(0, std, (n, n))
    q = (w + w.T) / 2
    np.fill_diagonal(q, 1.0)
    return q


def gt_graph(seed: int, delay: int = 0) -> Graph:
    """input -> fc1 (+bias) -> gt1 (potential) -> fc2 (+bias) -> gt2 (spikes) <- skip <- input."""
    rng = np.random.default_rng(seed)
    n0, n1, n2 = 4, int(rng.integers(4, 8)), int(rng.integers(3, 7))

    def pop(cls, n, **kw):
        return cls((n,), _sym(rng, n), lam=float(rng.uniform(8, 20)), i_psi=float(rng.uniform(1, 3)),
                   a=rng.uniform(0.3, 1.0, n), v0=float(rng.uniform(-0.3, 0.1)), **kw)

    nodes = {"input": Input((n0,)), "fc1": Affine(rng.normal(0, 0.4, (n1, n0)), rng.normal(0, 0.3, n1)),
             "gt1": pop(GTPotential, n1), "fc2": Affine(rng.normal(0, 0.8, (n2, n1)), rng.normal(0, 0.3, n2)),
             "skip": Affine(rng.normal(0, 0.3, (n2, n0))), "gt2": pop(GT, n2, input_delay=delay), "out": Output((n2,))}
    edges = [("input", "fc1"), ("fc1", "gt1"), ("gt1", "fc2"), ("fc2", "gt2"), ("input", "skip"), ("skip", "gt2"),
             ("gt2", "out")]
    return Graph(nodes, edges)


def inputs(seed: int, batch: int = 3, steps: int = T, integer: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if integer:
        return rng.integers(0, 8, (steps, batch, 4)).astype(np.float64)
    return rng.uniform(0.0, 1.0, (steps, batch, 4))


def padded(net, x):
    lat = max(p.latency for p in net.populations.values())
    return np.concatenate([x, np.zeros((lat, *x.shape[1:]))])


def _fixed(acc, v0, q, q_exp, bias, lam, psi, frac, a, onset=0, bias_onset=0):
    acc = np.asarray(acc, np.int64)
    t_steps, batch, n = acc.shape
    v = np.full((batch, n), v0, np.int64)
    s, vo = np.zeros(acc.shape, np.uint8), np.zeros(acc.shape, np.int64)
    counts = np.zeros((batch, n, 2), np.int64)
    gt_fixed_run(acc, v, np.asarray(q, np.int64), q_exp, np.asarray(bias, np.int64), lam, psi, frac,
                 np.asarray(a, np.int64), onset, bias_onset, 0, s, vo, counts)
    return s, vo, v, counts


def test_fixed_step_by_hand():
    """F = 4 (V = 16 v), Q = 2 * 2**-1, a_in = 1 (<< 6: G units), PSI = 48, LAM = 320, A = 2048 (a = 1/2)."""
    s, vo, v, counts = _fixed(np.ones((3, 1, 1)), -2, [[2]], -1, [0], 320, 48, 4, [2048])
    # t0: QV = rdiv(-4, 2) = -2; G = 64 + 2 = 66; L = 320; U = rdiv((66*16 - 640) * 16, 5120 - 132) = rdiv(6656, 4988) = 1
    #     V' = -2 + rdiv(2048 * 3, 4096) = -2 + 2 (1.5 rounds away from zero) = 0
    # t1: G = 64; U = rdiv(1024 * 16, 5120) = 3 (3.2); V' = 0 + rdiv(6144, 4096) = 2
    # t2: s = 1; QV = rdiv(4, 2) = 2; G = 64 - 2 - 48 = 14; U = rdiv((224 + 640) * 16, 5120 + 28) = rdiv(13824, 5148) = 3
    #     V' = 2 + rdiv(2048, 4096) = 3 (0.5 rounds away)
    assert vo[:, 0, 0].tolist() == [-2, 0, 2] and s[:, 0, 0].tolist() == [0, 0, 1] and v[0, 0] == 3
    assert counts.sum() == 0


def test_fixed_onset_bias_onset_and_rounding_symmetry():
    """Before onset: V held, zeros sent; the bias joins at bias_onset; -v, -g give -u (no spike term)."""
    acc = np.zeros((4, 2, 1))
    s, vo, v, _ = _fixed(acc, 0, [[0]], 0, [100], 320, 0, 4, [4096], onset=1, bias_onset=2)
    # t0 held (out 0); t1: G = 0 -> U = 0 = V; t2: G = 100, V = 0: U = rdiv(1600 * 16, 5120) = 5 -> V' = 5 (a = 1)
    assert vo[:, 0, 0].tolist() == [0, 0, 0, 5] and s.sum() == 2     # the one spike at t3, in both samples
    pos = _fixed(np.full((5, 1, 3), 7), -9, np.eye(3, dtype=int) * 2, -1, [5, -3, 0], 320, 0, 6, [1000, 2048, 4096])
    neg = _fixed(np.full((5, 1, 3), -7), 9, np.eye(3, dtype=int) * 2, -1, [-5, 3, 0], 320, 0, 6, [1000, 2048, 4096])
    assert np.array_equal(pos[1], -neg[1]) and np.array_equal(pos[2], -neg[2])


def test_fixed_lambda_rule_bounds_and_saturation():
    """Huge inputs: G saturates at 24 bits (counted), lambda follows |G|, and |V| <= 2**F at every step."""
    rng = np.random.default_rng(0)
    frac = 18
    acc = rng.integers(-2**20, 2**20, (50, 4, 6))
    q = np.round(_sym(rng, 6) * 64).astype(np.int64) * 2
    s, vo, v, counts = _fixed(acc, -(2**frac) // 10, q, -7, rng.integers(-4000, 4000, 6), 20 << frac, 3 << frac,
                              frac, rng.integers(1, 4097, 6))
    assert np.abs(vo).max() <= 2**frac and np.abs(v).max() <= 2**frac
    assert np.abs(vo).max() > 0.9 * 2**frac            # the bound is approached, not trivially met
    assert counts[..., 1].sum() > 0 and counts[..., 0].sum() == 0
    assert 0 < s.mean() < 1


def test_graph_nodes_reproduce_gt_step():
    rng = np.random.default_rng(1)
    q = _sym(rng, 5)
    w, c = rng.normal(0, 0.5, (5, 3)), rng.normal(0, 0.3, 5)
    x = torch.as_tensor(rng.uniform(0, 1, (T, 2, 3)))
    p = GTParameters(q=torch.as_tensor(q), lam=12.0, i_psi=2.0, modulation=Modulation("constant", a=0.6))
    b = torch.stack([torch.nn.functional.linear(x[t], torch.as_tensor(w), torch.as_tensor(c)) for t in range(T)])
    spikes, potentials, _ = run_gt(b, p, v0=-0.2)
    for cls, ref in ((GT, spikes), (GTPotential, potentials)):
        g = Graph({"x": Input((3,)), "fc": Affine(w, c), "gt": cls((5,), q, lam=12.0, i_psi=2.0, a=0.6, v0=-0.2)},
                  [("x", "fc"), ("fc", "gt")])
        out = g.forward(x)["gt"]
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert 0 < spikes.mean() < 1 and torch.equal(spikes, (potentials > 0).double())
    node = GT.from_params(p, 5, v0=-0.2)
    assert np.array_equal(node.q, q) and node.a == 0.6 and node.lam == 12.0


@pytest.mark.parametrize("arch", ["network1", "network2", "network3"])
def test_to_graph_equals_the_gt_network(arch):
    """The torch graph (feature codes) spikes exactly like GTNetwork on features the codes represent exactly."""
    eta = (1e-4,) if arch == "network1" else (1e-4, 1e-3)
    net = GTNetwork(6, 3, GTNetworkConfig(architecture=arch, iterations=25, eta=eta), seed=2)
    x = np.round(np.random.default_rng(3).random((5, 6)) * 256) / 256
    g = net.to_graph()
    counts = spike_counts(net, g, g, x, "torch")
    ref = net.spike_counts(torch.as_tensor(x)).numpy()
    assert np.array_equal(counts.sum(2), ref) and ref.min() > 0
    assert [kind_of(g.nodes[p]).name for p in g.populations] == ["gt_potential", "gt"][-len(net.layers):]


def test_gt_network_lag_is_the_delayed_differential_input():
    """lag=1 (what unaligned Lava timing would compute): layer 2 gets d1[n-1] (0 at n = 0); hand-written loop."""
    b, its = 6, 40
    net = GTNetwork(4, 2, GTNetworkConfig(iterations=its), seed=4)
    x = torch.as_tensor(np.random.default_rng(5).random((b, 4)))
    y = net.label_codes(torch.tensor([0, 1, 0, 1, 1, 0]))
    xb = torch.cat([x, torch.ones(b, 1, dtype=x.dtype)], 1)
    l1, l2 = net.layers
    s1 = gt_initial_state((b, 2 * l1.n_units), -0.1, torch.float64)
    s2 = gt_initial_state((b, 2 * l2.n_units), -0.1, torch.float64)
    d_prev, total = torch.zeros(b, l1.n_units, dtype=torch.float64), torch.zeros(b, dtype=torch.float64)
    for _ in range(its):
        v1 = s1.v
        sp1, s1 = gt_step(torch.cat([xb, -xb], 1), s1, l1.params)
        u2 = torch.cat([d_prev, y], 1)
        sp2, s2 = gt_step(torch.cat([u2, -u2], 1), s2, l2.params)
        total += sp1.sum(1) + sp2.sum(1)
        d_prev = v1[:, :l1.n_units] - v1[:, l1.n_units:]
    lagged = net.run(x, y, lag=1).total
    assert torch.equal(lagged, total) and not torch.equal(lagged, net.run(x, y).total)


@pytest.mark.parametrize("seed,delay", [(0, 0), (1, 1), (2, 0)])
def test_sim_float_equals_the_torch_graph_with_its_timing(seed, delay):
    """Populations start at their latency (bias at latency + input_delay): aligned sim-float == Graph.forward."""
    g = gt_graph(seed, delay)
    x = inputs(seed + 10)
    ref = run(g, x, backend="torch")
    net = lower(g)
    out = run(net, padded(net, x), backend="sim-float", align=True)
    np.testing.assert_allclose(out["gt1"]["values"][:T], ref["gt1"]["values"], rtol=0, atol=1e-12)
    assert np.array_equal(out["gt2"]["spikes"][:T], ref["gt2"]["spikes"])
    assert 0 < ref["gt2"]["spikes"].mean() < 1 and net.populations["gt2"].latency == 2 - delay


def test_fixed_point_follows_float():
    """Decoded fixed-point potentials stay close to floating point on the same graph and inputs."""
    g = gt_graph(3)
    net = lower(g)
    q = quantize(net, input_max=7)
    x = padded(net, inputs(4, batch=6, integer=True))
    fixed = run(q, x, backend="sim", align=True)
    flt = run(net, x, backend="sim-float", align=True)
    decoded = q.populations["gt1"].decode(fixed["gt1"]["values"][:T])
    assert fixed["gt1"]["values"].dtype == np.int64
    assert np.abs(decoded - flt["gt1"]["values"][:T]).mean() < 0.01          # mean |v| ~ 0.6
    assert (fixed["gt2"]["spikes"][:T] == flt["gt2"]["spikes"][:T]).mean() > 0.97
    r = {row["layer"]: row for row in q.report}
    assert r["gt1"]["frac_bits"] == 18 and r["gt1"]["q_rel_rms_error"] < 0.01 and r["gt1"]["output_max"] == 1.0


@pytest.mark.slow
def test_sim_bit_exact_with_lava_fixed_and_float_with_lava_float():
    g = gt_graph(5, delay=1)
    net = lower(g)
    q = quantize(net, input_max=7)
    x = padded(net, inputs(6, batch=2, steps=20, integer=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lava = run(q, x, backend="lava-fixed")
        lava_f = run(net, x, backend="lava-float")
    sim, sim_f = run(q, x, backend="sim"), run(net, x, backend="sim-float")
    assert np.array_equal(sim["gt1"]["values"], lava["gt1"]["values"])
    assert np.array_equal(sim["gt2"]["spikes"], lava["gt2"]["spikes"]) and sim["gt2"]["spikes"].any()
    for p in ("gt1", "gt2"):
        assert np.array_equal(sim[p]["v"], lava[p]["v"].astype(np.int64))
        np.testing.assert_allclose(lava_f[p]["v"], sim_f[p]["v"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lava_f["gt1"]["values"], sim_f["gt1"]["values"], rtol=0, atol=1e-12)
    assert np.array_equal(lava_f["gt2"]["spikes"], sim_f["gt2"]["spikes"])


def test_serialize_round_trip_keeps_the_gt_populations(tmp_path):
    g = gt_graph(7)
    q = quantize(lower(g), input_max=7)
    save_qnetwork(q, tmp_path / "gt.npz")
    back = load_qnetwork(tmp_path / "gt.npz")
    for p in ("gt1", "gt2"):
        a, b = q.populations[p], back.populations[p]
        assert type(a) is type(b) and kind_of(b).name == kind_of(a).name
        assert np.array_equal(a.q, b.q) and (a.frac_bits, a.lam, a.onset, a.bias_onset) == (b.frac_bits, b.lam, b.onset,
                                                                                          b.bias_onset)
    x = inputs(8, integer=True)
    assert np.array_equal(run(q, x)["gt2"]["spikes"], run(back, x)["gt2"]["spikes"])


def test_bad_input_is_refused_naming_the_parameter():
    q = np.eye(3)
    with pytest.raises(ValueError, match="q must be symmetric"):
        GT((3,), q + np.triu(np.ones((3, 3)), 1))
    with pytest.raises(ValueError, match=r"q must be a scalar or \(3, 3\)"):
        GT((3,), np.eye(4))
    with pytest.raises(ValueError, match="one-dimensional"):
        GT((3, 1), 1.0)
    with pytest.raises(ValueError, match=r"a \(modulation\) must be in \(0, 1\]"):
        GTPotential((3,), q, a=0.0)
    with pytest.raises(ValueError, match=r"\|v0\| must be <= vc"):
        GT((3,), q, v0=1.5)
    with pytest.raises(ValueError, match="lam and vc must be > 0"):
        GT((3,), q, lam=0.0)
    with pytest.raises(ValueError, match="layer 'gt2'.*modulation 'adaptive' cannot be deployed"):
        GT.from_params(GTParameters(modulation=Modulation("adaptive")), 3, name="layer 'gt2'")
    net = GTNetwork(4, 2, GTNetworkConfig(iterations=5), seed=0)
    with pytest.raises(ValueError, match="input_bits"):
        net.to_graph(input_bits=0)
    with pytest.raises(ValueError, match=r"input_shape must be \(4,\)"):
        net.to_graph((5,))
    with pytest.raises(ValueError, match=r"x must be \(B, 4\) features"):
        net.graph_inputs(np.zeros((2, 5)), 5)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        net.graph_inputs(np.zeros((2, 4)), 0)
    with pytest.raises(ValueError, match="lag must be an int >= 0"):
        net.run(torch.zeros(1, 4), net.label_codes(torch.tensor([0])), lag=-1)
    big = Graph({"x": Input((2,)), "fc": Affine(np.full((3, 2), 1e5)), "gt": GT((3,), q)}, [("x", "fc"), ("fc", "gt")])
    with pytest.raises(ValueError, match="layer 'gt': only .* fraction bits fit"):
        quantize(lower(big))
    with pytest.raises(ValueError, match="layer 'gt1': gt_frac_bits=20 is above"):
        quantize(lower(gt_graph(0)), gt_frac_bits=20)
    with pytest.raises(ValueError, match="integers"):
        run(quantize(lower(gt_graph(0))), inputs(0))              # fixed point needs integer (coded) inputs
