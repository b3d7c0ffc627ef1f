"""Packed multi-sample networks (``spikes.deploy.pack``) and packed Lava runs (``run_lava_packed``).

References: ``sim`` on the unpacked network (B samples as its batch), Lava's own per-copy graphs
(``run_lava``, one graph copy per sample) and ``sim`` on the packed network. Fixed point: bit for bit
(spikes, graded values and final states) on random graphs of every kind in ``random_graphs``, an integrator
readout, an e-prop RSNN, a small StereoSpike and a GT network. Floating point: the same spikes; values and
states to within float64 rounding (a packed projection is a Sparse matrix, whose row sums run in another
order than a per-copy Dense).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from spikes.deploy.backends import TRACES, run
from spikes.graph import Affine, Graph, Input, Integrator, Neurons, Output, capture
from spikes.deploy.network import lower
from spikes.deploy.pack import copies_per_pack, pack, pack_inputs, packed_entries, unpack
from spikes.deploy.quantize import quantize
from spikes.deploy.random_graphs import KINDS, random_graph, random_input
from spikes.deploy.sim import simulate
from spikes.neurons.dynamics import NeuronParameters

B = 3
T = 14


def readout_graph(seed: int) -> Graph:
    """input -> fc1 -> LIF -> fc2 (+bias) -> Integrator, plus a graded skip input -> Integrator (delay 2)."""
    rng = np.random.default_rng(seed)
    p = NeuronParameters(alpha=0.85, v_th=1.0, reset="zero")
    nodes = {"input": Input((10,)), "fc1": Affine(rng.normal(0, 0.9, (16, 10))), "lif": Neurons((16,), p),
             "fc2": Affine(rng.normal(0, 0.5, (4, 16)), rng.normal(0, 0.2, 4)),
             "skip": Affine(rng.normal(0, 0.3, (4, 10))),
             "readout": Integrator((4,), alpha=0.9, bias=rng.normal(0, 0.1, 4)), "output": Output((4,))}
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "readout"), ("input", "skip"),
             ("skip", "readout"), ("readout", "output")]
    return Graph(nodes, edges)


def rsnn_graph(seed: int) -> Graph:
    """A small LIF + ALIF e-prop RSNN (refractory, adaptive) that fires, as its deploy graph."""
    from spikes.models.rsnn import RSNN, RSNNConfig

    cfg = RSNNConfig(n_in=12, n_rec=14, n_out=3, n_adaptive=6, tau_m=20.0, tau_a=200.0, tau_out=20.0, v_th=0.6,
                     n_ref=2, beta=0.5)
    model = RSNN(cfg, seed=seed, dtype=torch.float64)
    with torch.no_grad():
        model.w_in.mul_(3.0)
    return capture(model, (cfg.n_in,))


def stereo_graph(seed: int) -> Graph:
    """A small random StereoSpike (16 x 20 frames, 2 levels, one residual block) whose units fire."""
    from torch import nn

    from spikes.models.stereospike import StereoSpike

    torch.manual_seed(seed)
    m = StereoSpike(base=2, levels=2, n_res=1, input_size=(16, 20), neuron="if", init_depth=2.0).eval()
    with torch.no_grad():
        for name, layer in m.layers.items():
            if isinstance(layer, nn.Conv2d):
                fan = layer.weight[0].numel() ** 0.5
                layer.weight.normal_(0.0 if name.startswith("dec") else 0.15 / fan, 2.5 / fan)
    return capture(m, (4, 16, 20))


def gt_parts(seed: int):
    """A differential GT network (network2) as a graph, and its inputs: one sample x 3 candidate labels = B rows
    (12-bit feature codes, which both precisions take)."""
    from spikes.models.gt_network import GTNetwork, GTNetworkConfig

    net = GTNetwork(5, 3, GTNetworkConfig(architecture="network2", iterations=T - 2), seed=seed)
    x = np.random.default_rng(seed).random((1, 5))
    return net.to_graph(), net.graph_inputs(x, T)                         # rows: 1 sample x 3 labels = B


def case(name: str, seed: int = 0):
    """``(lowered net, quantised net, fixed-point inputs, float inputs)`` of a named test network, B samples."""
    if name in KINDS:
        g, shape = random_graph(name, 10 + seed)
        x = {"input": random_input(shape, T, B, 20 + seed)}
        return lower(g), quantize(lower(g)), x, x
    if name == "readout":
        g = readout_graph(seed)
        x = {"input": np.random.default_rng(seed).poisson(0.5, (T, B, 10)).astype(np.float64)}
        return lower(g), quantize(lower(g), input_max=4.0), x, x
    if name == "rsnn":
        g = rsnn_graph(seed)
        x = {"input": (np.random.default_rng(seed).random((T, B, 12)) < 0.3).astype(np.float64)}
        return lower(g), quantize(lower(g)), x, x
    if name == "stereo":
        g = stereo_graph(seed)
        frame = np.random.default_rng(seed).poisson(0.6, (1, B, 4, 16, 20)).astype(np.float64)
        x = {"input": np.concatenate([frame, np.zeros((T - 1, B, 4, 16, 20))])}
        return lower(g), quantize(lower(g), input_max=float(frame.max())), x, x
    if name == "gt":
        g, x = gt_parts(seed)
        return lower(g), quantize(lower(g), input_max={"features": 2**12, "labels": 1}), x, x
    raise ValueError(name)


FAMILIES = (*KINDS, "readout", "rsnn", "stereo", "gt")


def assert_same(a: dict, b: dict, pops, what: str, exact: bool = True) -> None:
    for p in pops:
        assert set(a[p]) == set(b[p]), (what, p)
        for k in a[p]:
            x, y = np.asarray(a[p][k]), np.asarray(b[p][k])
            assert x.shape == y.shape, (what, p, k, x.shape, y.shape)
            if exact or k == "spikes":
                assert np.array_equal(x, y.astype(x.dtype)), (what, p, k)
            else:
                np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-9, err_msg=f"{what} {p} {k}")


def per_copy(jobs: list, fixed: bool, states: bool = True) -> list[dict]:
    from spikes.deploy.lava_backend import run_lava

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_lava(jobs, fixed=fixed, states=states)


def packed_lava(net, x: dict, fixed: bool, **kw) -> dict:
    from spikes.deploy.lava_backend import run_lava_packed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_lava_packed(net, x, fixed=fixed, **kw)


def one_sample(result: dict, b: int, pops) -> dict:
    """Sample ``b`` of a batched result, in ``run_lava``'s per-job layout."""
    return {p: {k: v[:, b] if k in TRACES else v[b] for k, v in result[p].items()} for p in pops}


# -- the transformation (no Lava) -------------------------------------------------------------------------

def test_packed_layout_block_structure_and_unpacking_shapes():
    _, q, x, _ = case("conv_skip")
    p = pack(q, B)
    assert any(len(pop.shape) == 3 for pop in p.populations.values())     # conv ends: copies stacked on channels
    for name, pop in q.populations.items():
        n = pop.size
        assert p.populations[name].size == B * n and p.populations[name].latency == pop.latency
        shape = p.populations[name].shape
        assert shape == ((B * pop.shape[0], *pop.shape[1:]) if len(shape) == 3 else (B * n,))
        assert np.array_equal(p.populations[name].bias_mant, np.tile(pop.bias_mant, B))
        assert (p.populations[name].du, p.populations[name].vth) == (pop.du, pop.vth)
    for orig, new in zip(q.projections, p.projections):
        assert (new.delay, new.weight_exp, new.recurrent) == (orig.delay, orig.weight_exp, orig.recurrent)
        if orig.kind == "conv":      # a grouped conv over the copies: the kernel tiled, no matrix
            assert new.kind == "conv" and new.conv.groups == B * orig.conv.groups
            assert np.array_equal(new.weight, np.tile(orig.weight, (B, 1, 1, 1)))
        else:                        # kron(I_B, W): the diagonal blocks are W, the others empty
            w = sp.csr_matrix(new.weight)
            n_out, n_in = orig.weight.shape
            for i in range(B):
                for j in range(B):
                    block = w[i * n_out:(i + 1) * n_out, j * n_in:(j + 1) * n_in].toarray()
                    assert np.array_equal(block, orig.weight.toarray() if sp.issparse(orig.weight) else orig.weight) \
                        if i == j else not block.any()
    flat = pack(q, B, conv=False)
    assert all(pr.kind == "sparse" for pr in flat.projections)
    assert all(len(pop.shape) == 1 for pop in flat.populations.values())
    px = pack_inputs(x, q)
    assert px["input"].shape == (T, 1, *p.inputs["input"])
    out = unpack(simulate(p, px), q, B)
    for name, pop in q.populations.items():
        assert out[name]["spikes"].shape == (T, B, *pop.shape) and out[name]["v"].shape == (B, *pop.shape)
    assert "_overflow" in out


def test_gt_packs_a_block_diagonal_coupling_and_tiled_parameters():
    net, q, _, _ = case("gt")
    for model in (net, q):
        p = pack(model, B)
        for name, pop in model.populations.items():
            qm = pop.q if model is q else pop.node.q
            packed = p.populations[name].q if model is q else p.populations[name].node.q
            n = pop.size
            assert packed.shape == (B * n, B * n) and packed.dtype == qm.dtype
            assert np.array_equal(packed, np.kron(np.eye(B, dtype=qm.dtype), qm))
            a = p.populations[name].a if model is q else p.populations[name].node.a_vector()
            assert np.array_equal(a, np.tile(pop.a if model is q else pop.node.a_vector(), B))


@pytest.mark.parametrize("family", FAMILIES)
def test_sim_on_the_packed_network_equals_sim_on_the_batch(family):
    """Packing is exact: sim's own run of the packed network gives the batch's spikes, values and states."""
    net, q, x, xf = case(family)
    ref = simulate(q, x)
    got = unpack(simulate(pack(q, B), pack_inputs(x, q)), q, B)
    assert_same(ref, got, q.populations, family)
    assert all(np.asarray(ref[p].get("spikes", ref[p].get("values"))).any() for p in q.populations)  # all active
    ref_f = simulate(net, xf)
    got_f = unpack(simulate(pack(net, B), pack_inputs(xf, net)), net, B)
    assert_same(ref_f, got_f, net.populations, family, exact=False)


def test_pack_plan_sizes_and_budget():
    from spikes.deploy.lava_backend import pack_plan

    _, q, _, _ = case("dense")
    per = packed_entries(q, 1)
    assert packed_entries(q, 7) == 7 * per
    for budget, batch in ((per, 5), (3 * per, 10), (10**9, 4), (1, 3)):
        plan = pack_plan(q, batch, budget)
        assert sum(plan) == batch and max(plan) - min(plan) <= 1
        assert all(packed_entries(q, c) <= budget or c == 1 for c in plan)
        assert len(plan) == -(-batch // copies_per_pack(q, budget, batch))
    _, qg, _, _ = case("gt")           # the coupling grows quadratically: (c N)**2 per GT population
    coupling = sum(p.size**2 for p in qg.populations.values())
    synapses = packed_entries(qg, 1) - coupling
    assert packed_entries(qg, 4) == 4 * synapses + 16 * coupling
    assert copies_per_pack(qg, packed_entries(qg, 5), 100) == 5


def test_bad_arguments_are_refused_with_clear_messages():
    _, q, x, _ = case("dense")
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="copies must be an int >= 1"):
            pack(q, bad)
    with pytest.raises(ValueError, match="missing input 'input'"):
        pack_inputs({}, q)
    with pytest.raises(ValueError, match=r"input 'input' must be \(T, B, "):
        pack_inputs({"input": x["input"][:, :, :-1]}, q)
    out = simulate(pack(q, B), pack_inputs(x, q))
    with pytest.raises(ValueError, match="for 2 copies"):
        unpack(out, q, 2)
    _, qg, _, _ = case("gt")
    gt_pop = next(iter(qg.populations.values()))
    from spikes.deploy.populations import kind_of
    with pytest.raises(ValueError, match="packed GT population is flat"):
        kind_of(gt_pop).pack(gt_pop, 2, (2, gt_pop.size))
    from spikes.deploy.lava_backend import pack_plan
    with pytest.raises(ValueError, match="at least one sample"):
        pack_plan(q, 0)


# -- packed Lava runs -------------------------------------------------------------------------------------

@pytest.mark.lava
@pytest.mark.slow
def test_packed_lava_fixed_equals_per_copy_lava_and_sim_on_random_graphs():
    """Every random graph kind: packed Lava == Lava's per-copy graph == sim, spikes and final u, v, bit for bit;
    one kind is split into two packs (2 + 1 copies) to check the packs are put back in order."""
    cases = {k: case(k) for k in KINDS}
    last = [(q, {n: v[:, B - 1] for n, v in x.items()}) for _, q, x, _ in cases.values()]
    copies = per_copy(last, fixed=True)
    for (kind, (_, q, x, _)), cp in zip(cases.items(), copies):
        budget = packed_entries(q, 2) if kind == "skip" else None
        got = packed_lava(q, x, True, **({"pack_entries": budget} if budget else {}))
        assert_same(simulate(q, x), got, q.populations, kind)
        assert_same(cp, one_sample(got, B - 1, q.populations), q.populations, kind)


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("family", ["readout", "rsnn", "stereo", "gt"])
def test_packed_lava_fixed_equals_per_copy_lava_and_sim(family):
    """Integrator readout (graded values, a graded input on two delays), e-prop RSNN (recurrent, custom
    kind), StereoSpike (grouped convs, relayed skips, graded readout) and GT (block-diagonal q)."""
    _, q, x, _ = case(family)
    states = family != "stereo"                # Var.get per element: the U-Net's states take long
    got = packed_lava(q, x, True, states=states)
    sim = simulate(q, x)
    if not states:
        sim = {p: {k: v for k, v in sim[p].items() if k in TRACES} for p in q.populations}
    assert_same(sim, got, q.populations, family)
    cp = per_copy([(q, {n: v[:, 1] for n, v in x.items()})], fixed=True, states=states)[0]
    assert_same(cp, one_sample(got, 1, q.populations), q.populations, family)


@pytest.mark.lava
@pytest.mark.slow
def test_packed_lava_float_equals_sim_float_and_per_copy_float():
    """Floating point: the packed Lava run spikes exactly like sim-float and Lava's per-copy graph; values and
    states agree to float64 rounding."""
    names = ("dense", "conv_skip", "readout", "rsnn", "gt")
    cases = {k: case(k) for k in names}
    copies = per_copy([(net, {n: v[:, 0] for n, v in xf.items()}) for net, _, _, xf in cases.values()], fixed=False)
    for (name, (net, _, _, xf)), cp in zip(cases.items(), copies):
        got = packed_lava(net, xf, False)
        assert_same(simulate(net, xf), got, net.populations, name, exact=False)
        assert_same(cp, one_sample(got, 0, net.populations), net.populations, name, exact=False)


@pytest.mark.lava
@pytest.mark.slow
def test_one_sample_and_the_backend_switch():
    """B = 1: a pack of one copy equals the per-copy graph; backends.run packs B > 1 unless packed=False."""
    _, q, x, _ = case("conv")
    one = {k: v[:, :1] for k, v in x.items()}
    got = packed_lava(q, one, True)
    cp = per_copy([(q, {k: v[:, 0] for k, v in x.items()})], fixed=True)[0]
    assert_same(cp, one_sample(got, 0, q.populations), q.populations, "B=1")
    assert got[next(iter(q.populations))]["spikes"].shape[1] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = run(q, x, backend="lava-fixed", align=True)
        b = run(q, x, backend="lava-fixed", align=True, packed=False)
    assert_same(a, b, q.populations, "backends.run")
    assert_same(run(q, x, backend="sim", align=True), a, q.populations, "sim")
