"""Backends against each other and against Lava itself: ``sim`` == ``lava-fixed`` bit for bit on random dense,
conv, recurrent and skip graphs; ``lava-float`` and ``sim-float`` against the torch float reference."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from spikes.deploy.backends import run
from spikes.deploy.kernels import lif_fixed_sequence, lif_fixed_step
from spikes.deploy.network import lower
from spikes.deploy.quantize import quantize
from spikes.deploy.random_graphs import KINDS, random_graph, random_input
from spikes.deploy.sim import simulate

STEPS = 30
N_GRAPHS = 20


def _jobs(bias: bool, graded: bool):
    out = []
    for i in range(N_GRAPHS):
        kind = KINDS[i % len(KINDS)]
        graph, shape = random_graph(kind, 100 + i, bias=bias)
        out.append((kind, graph, random_input(shape, STEPS, 1, 200 + i, graded=graded)))
    return out


def test_fixed_kernel_by_hand():
    """u, v, spikes of Lava's fixed-point LIF computed by hand for a few steps (incl. the +1 on du)."""
    a = np.array([[3], [0], [0], [-1]], dtype=np.int64)
    du, dv, vth = 2047, 1024, 2           # u decays by (4096-2048)/4096 = 1/2, v by 3/4; threshold 2 << 6 = 128
    u = np.zeros(1, np.int64)
    v = np.zeros(1, np.int64)
    s = np.zeros((4, 1), np.uint8)
    counts = np.zeros((1, 2), np.int64)
    lif_fixed_sequence(a, du, dv, vth, np.zeros(1, np.int64), u, v, s, counts)
    # t0: u = 192, v = 192 > 128 -> spike, v = 0; t1: u = 96, v = 96; t2: u = 48, v = 72 + 48 = 120
    # t3: u = 24 - 64 = -40, v = 90 - 40 = 50
    assert s.ravel().tolist() == [1, 0, 0, 0]
    assert (u[0], v[0]) == (-40, 50)


def test_fixed_kernel_wrap_and_saturation_match_numpy_step():
    rng = np.random.default_rng(0)
    a = rng.integers(-2**17, 2**17, size=(40, 64)).astype(np.int64)
    bias = rng.integers(-2**15, 2**15, size=64).astype(np.int64)
    u1, v1, u2, v2 = (np.zeros(64, np.int64) for _ in range(4))
    s1 = np.zeros((40, 64), np.uint8)
    c1, c2 = np.zeros((64, 2), np.int64), np.zeros((64, 2), np.int64)
    lif_fixed_sequence(a, 100, 10, 5000, bias, u1, v1, s1, c1)
    s2 = np.stack([lif_fixed_step(a[t].copy(), u2, v2, 100, 10, 5000, bias, c2) for t in range(40)])
    assert (s1 == s2).all() and (u1 == u2).all() and (v1 == v2).all() and (c1 == c2).all()
    assert c1[:, 0].sum() > 0 and c1[:, 1].sum() > 0   # the test does exercise the wrap and the saturation


@pytest.mark.slow
def test_sim_is_bit_exact_with_lava_fixed_on_20_random_graphs():
    from spikes.deploy.lava_backend import run_lava

    jobs = _jobs(bias=True, graded=True)
    qnets = [quantize(lower(g)) for _, g, _ in jobs]
    sims = [simulate(q, {"input": x}) for q, (_, _, x) in zip(qnets, jobs)]
    lava = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in range(0, N_GRAPHS, 5):
            lava += run_lava([(q, {"input": x[:, 0]}) for q, (_, _, x) in zip(qnets[start:start + 5], jobs[start:start + 5])],
                             fixed=True)
    active = 0
    for (kind, _, _), q, s, l in zip(jobs, qnets, sims, lava):
        for pop in q.populations:
            assert np.array_equal(s[pop]["spikes"][:, 0], l[pop]["spikes"]), (kind, pop)
            assert np.array_equal(s[pop]["u"][0], l[pop]["u"].astype(np.int64)), (kind, pop, "u")
            assert np.array_equal(s[pop]["v"][0], l[pop]["v"].astype(np.int64)), (kind, pop, "v")
            active += int(s[pop]["spikes"].any())
    assert active >= 0.8 * sum(len(q.populations) for q in qnets)   # most populations do spike


def _agreement(a: dict, b: dict, pops, steps: int) -> float:
    same = total = 0
    for p in pops:
        x, y = a[p]["spikes"][:steps], b[p]["spikes"][:steps]
        same += int((x == y).sum())
        total += x.size
    return same / total


@pytest.mark.parametrize("bias", [False, True])
def test_sim_float_matches_torch_reference_with_latency(bias):
    """Lava's float semantics (sim-float), aligned by each population's latency, equals the torch timing; with
    biases too (a population's membrane starts where its latency's bias-only steps bring it back to 0)."""
    for _, graph, x in _jobs(bias=bias, graded=True):
        net = lower(graph)
        ref = run(graph, torch.as_tensor(x), "torch")
        got = run(net, x, "sim-float", align=True)
        valid = STEPS - max(p.latency for p in net.populations.values())
        assert _agreement(ref, got, net.populations, valid) >= 0.99


@pytest.mark.slow
def test_lava_float_agrees_with_torch_float_on_20_random_graphs():
    from spikes.deploy.lava_backend import run_lava

    jobs = _jobs(bias=True, graded=True)
    nets = [lower(g) for _, g, _ in jobs]
    lava = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in range(0, N_GRAPHS, 5):
            lava += run_lava([(n, {"input": x[:, 0]}) for n, (_, _, x) in zip(nets[start:start + 5], jobs[start:start + 5])],
                             fixed=False, states=False)
    same = total = 0
    for net, (_, graph, x), l in zip(nets, jobs, lava):
        ref = graph.forward(torch.as_tensor(x))
        for name, pop in net.populations.items():
            valid = STEPS - pop.latency
            a = ref[name][:valid, 0].numpy()
            b = l[name]["spikes"][pop.latency:]
            same += int((a == b).sum())
            total += a.size
    assert same / total >= 0.99, same / total


def test_unmappable_layers_are_refused_by_name():
    from spikes.graph import Affine, Graph, Input, Neurons, Output
    from spikes.neurons.dynamics import NeuronParameters

    for params, word in ((NeuronParameters(reset="subtract"), "subtract"),
                         (NeuronParameters(reset="zero", beta=0.5, rho=0.9), "ALIF"),
                         (NeuronParameters(reset="zero", refractory_steps=2), "refractory")):
        g = Graph({"input": Input((3,)), "fc": Affine(np.ones((2, 3))), "hidden": Neurons((2,), params),
                   "output": Output((2,))}, [("input", "fc"), ("fc", "hidden"), ("hidden", "output")])
        with pytest.raises(ValueError, match=f"hidden.*{word}"):
            quantize(lower(g))
        with pytest.raises(ValueError, match="hidden"):
            run(g, np.zeros((2, 1, 3)), "sim-float")


def test_fused_event_kernels_equal_the_matmul_path():
    """The fused event-driven Dense/Conv + LIF kernels give the same spikes, states and overflow counts."""
    for i in range(10):
        graph, shape = random_graph(KINDS[i % len(KINDS)], 300 + i)
        q = quantize(lower(graph))
        x = random_input(shape, 20, 3, 400 + i)
        a, b = simulate(q, {"input": x}), simulate(q, {"input": x}, fused=False)
        for p in q.populations:
            for k in ("spikes", "u", "v"):
                assert np.array_equal(a[p][k], b[p][k]), (p, k)
        assert a["_overflow"] == b["_overflow"]
