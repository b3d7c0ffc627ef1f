"""Exact chain matrices (``spikes.graph.matrix``) against probing the chain's own torch ops on basis
vectors: equal to float64 rounding for random weights, bit for bit for dyadic weights (exact sums)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikes.deploy import network
from spikes.graph import AvgPool2d, Conv2d, Graph, Input, Neurons, Scale, SumPool2d, Upsample
from spikes.graph.matrix import chain_matrix
from spikes.deploy.random_graphs import KINDS, random_graph
from spikes.neurons.dynamics import NeuronParameters


def probed(graph: Graph, pop: str, src: str) -> np.ndarray:
    """The chain src -> pop evaluated by the nodes' torch ``apply`` on every basis vector (the reference)."""
    _, linear = network._sources(graph, pop)
    shape = graph.nodes[src].output_shape
    n = math.prod(shape)
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    return network._evaluate(graph, pop, linear, src, eye, False, n).numpy().T


def chain(graph: Graph, pop: str, src: str) -> np.ndarray:
    _, linear = network._sources(graph, pop)
    m = chain_matrix(graph, src, pop, linear)
    assert m is not None
    return m.toarray()


def upsample_conv_graph(weight: np.ndarray, dyadic: bool = False) -> Graph:
    """input -> nearest upsample (non-integer ratio) -> strided, dilated, grouped conv -> gain -> population,
    plus an additive skip: input -> sum pool -> the same population's input (an average pool on the way)."""
    c, h, w = 4, 7, 9
    nodes = {"input": Input((c, h, w)), "up": Upsample((c, h, w), (17, 20)),
             "conv": Conv2d(weight, (c, 17, 20), None, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)}
    out = nodes["conv"].output_shape
    nodes["gain"] = Scale(out, 0.5 if dyadic else 1.7)
    nodes["pool"] = SumPool2d((c, h, w), 2, 1)
    nodes["avg"] = AvgPool2d((c, h - 1, w - 1), (2, 1), (1, 1))
    nodes["skip"] = Conv2d(weight[:, :, :2, :3], nodes["avg"].output_shape, None, padding=(2, 7), groups=2)
    nodes["lif"] = Neurons(out, NeuronParameters())
    assert nodes["skip"].output_shape == out
    edges = [("input", "up"), ("up", "conv"), ("conv", "gain"), ("gain", "lif"), ("input", "pool"), ("pool", "avg"),
             ("avg", "skip"), ("skip", "lif")]
    return Graph(nodes, edges)


def test_random_graphs_match_the_probe():
    worst = 0.0
    for kind in KINDS:
        for seed in range(6):
            g, _ = random_graph(kind, seed)
            for pop in g.populations:
                sources, _ = network._sources(g, pop)
                for src in sources:
                    ref = probed(g, pop, src)
                    worst = max(worst, np.abs(chain(g, pop, src) - ref).max() / max(np.abs(ref).max(), 1e-300))
    assert worst < 1e-14, worst


def test_upsample_conv_pool_chain_is_bit_exact_for_dyadic_weights():
    rng = np.random.default_rng(0)
    w = rng.integers(-64, 64, size=(6, 2, 3, 5)) / 16.0          # sums of these are exact in float64
    g = upsample_conv_graph(w, dyadic=True)
    ref = probed(g, "lif", "input")
    got = chain(g, "lif", "input")
    assert np.array_equal(got, ref)
    assert np.count_nonzero(ref) > 0.05 * ref.size                # a real, sparse matrix
    w = rng.normal(size=(6, 2, 3, 5))
    g = upsample_conv_graph(w)
    np.testing.assert_allclose(chain(g, "lif", "input"), probed(g, "lif", "input"), rtol=1e-14, atol=1e-14)


def test_lowering_uses_one_matrix_for_sources_entering_the_same_chain():
    """Two sources summed before an upsample + conv (a U-Net skip) get the same matrix, and it is the probe's."""
    rng = np.random.default_rng(1)
    p = NeuronParameters(alpha=0.0, reset="zero")
    nodes = {"input": Input((2, 6, 8)), "c1": Conv2d(rng.normal(size=(3, 2, 3, 3)), (2, 6, 8), None, padding=1),
             "a": Neurons((3, 6, 8), p), "c2": Conv2d(rng.normal(size=(3, 2, 3, 3)), (2, 6, 8), None, padding=1),
             "b": Neurons((3, 6, 8), p), "up": Upsample((3, 6, 8), (11, 13)),
             "conv": Conv2d(rng.normal(size=(2, 3, 3, 3)), (3, 11, 13), None), "out": Neurons((2, 9, 11), p)}
    edges = [("input", "c1"), ("c1", "a"), ("input", "c2"), ("c2", "b"), ("a", "up"), ("b", "up"), ("up", "conv"),
             ("conv", "out")]
    g = Graph(nodes, edges)
    net = network.lower(g)
    into = {pr.src: pr for pr in net.incoming("out")}
    wa, wb = (np.asarray(into[s].weight.toarray() if into[s].kind == "sparse" else into[s].weight) for s in "ab")
    assert np.array_equal(wa, wb)
    np.testing.assert_allclose(wa, probed(g, "out", "a"), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("kind", ["conv", "conv_skip"])
def test_lowered_networks_are_unchanged_where_probing_was_used(kind):
    """The lowering's projections equal the probed chains (the matrices it used before) on random graphs."""
    for seed in range(4):
        g, _ = random_graph(kind, 40 + seed)
        net = network.lower(g)
        for proj in net.projections:
            if proj.kind == "conv":
                continue
            w = proj.weight.toarray() if proj.kind == "sparse" else proj.weight
            np.testing.assert_allclose(w, probed(g, proj.dst, proj.src), rtol=1e-14, atol=1e-14)
