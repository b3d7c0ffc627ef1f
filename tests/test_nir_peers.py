"""NIR both ways with snntorch and norse: networks built in the peer, exported with its own exporter, imported into
spikes; and spikes-trained networks exported for each peer's importer and run there. The bar: the output spikes of
every layer coincide with the other side's on >= 99 % of spikes (coincident spikes over the larger spike count,
so silent layers cannot pass)."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from spikes.deploy.nir_io import NIRResetWarning, from_nir, to_nir
from spikes.deploy.nir_peers import PeerExportError
from spikes.graph import Affine, Graph, Input, Neurons, Output
from spikes.neurons.dynamics import NeuronParameters
from spikes.training import flat_config, load_model, train

BAR = 0.99


def coincidence(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spikes at the same (step, sample, neuron) in both, over the larger of the two spike counts."""
    a, b = a.bool(), b.bool()
    return float((a & b).sum()) / max(int(a.sum()), int(b.sum()), 1)


def _quiet_import(fn, *args, **kwargs):
    logging.disable(logging.WARNING)   # the peers print/log notes about their own conversions
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    finally:
        logging.disable(logging.NOTSET)


def _spikes(T: int, B: int, shape, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, *shape, generator=g) < p).float()


# --------------------------------------------------------------------------------------------- peer -> spikes
def _snntorch_steps(net, layers, x):
    """snntorch's own forward, step by step (init_hidden layers keep their state); spikes of ``layers``."""
    from snntorch import utils as snn_utils

    snn_utils.reset(net)
    out = {i: [] for i in layers}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = x[t]
            for i, m in enumerate(net):
                h = m(h)
                h = h[0] if isinstance(h, tuple) else h
                if i in layers:
                    out[i].append(h)
    return {i: torch.stack(v) for i, v in out.items()}


def _check_snntorch(net, in_shape, layers, x, reset_given: bool = True):
    from snntorch.export_nir import export_to_nir

    theirs = _snntorch_steps(net, layers, x)
    nir_graph = _quiet_import(export_to_nir, net, torch.zeros(*in_shape))
    graph = from_nir(nir_graph, dialect="snntorch", reset="zero")
    ours = graph.forward(x.double())
    names = {i: [p for p in graph.populations if p == str(i) or p.startswith(f"{i}.")][0] for i in layers}
    for i in layers:
        assert theirs[i].sum() > 20, f"layer {i} barely spikes"
        assert coincidence(ours[names[i]], theirs[i]) >= BAR, (i, coincidence(ours[names[i]], theirs[i]))
    return nir_graph


def test_snntorch_leaky_and_its_missing_reset_is_said():
    import snntorch as snn

    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 20), snn.Leaky(beta=torch.full((20,), 0.85), threshold=torch.ones(20), init_hidden=True,
                                           reset_mechanism="zero"),
        torch.nn.Linear(20, 6), snn.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), init_hidden=True,
                                          reset_mechanism="zero"))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    nir_graph = _check_snntorch(net, (12,), [1, 3], _spikes(40, 4, (12,)))
    with pytest.warns(NIRResetWarning, match=r"record no reset mechanism.*reset='zero'"):
        from_nir(nir_graph, dialect="snntorch")


@pytest.mark.parametrize("one_to_one", [False, True])
def test_snntorch_rleaky(one_to_one):
    """RLeaky's zero reset drops the whole step after a spike, and its recurrent nn.Linear adds its bias from the
    first step on: both used to make an imported RLeaky's spikes mostly disagree."""
    import snntorch as snn

    torch.manual_seed(2)
    n = 16
    rec = dict(all_to_all=False, V=torch.linspace(-0.5, 0.8, n)) if one_to_one else dict(linear_features=n)
    net = torch.nn.Sequential(
        torch.nn.Linear(10, n), snn.RLeaky(beta=torch.full((n,), 0.8), threshold=torch.ones(n), init_hidden=True,
                                           reset_mechanism="zero", **rec),
        torch.nn.Linear(n, 5), snn.Leaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5), init_hidden=True,
                                         reset_mechanism="zero"))
    with torch.no_grad():
        net[0].weight.mul_(3)
        if not one_to_one:
            net[1].recurrent.weight.mul_(2)
            net[1].recurrent.bias.uniform_(-0.3, 0.3)
        net[2].weight.mul_(3)
    _check_snntorch(net, (10,), [1, 3], _spikes(40, 4, (10,)))


@pytest.mark.parametrize("recurrent", [False, True])
def test_snntorch_synaptic_and_rsynaptic(recurrent):
    import snntorch as snn

    torch.manual_seed(3)
    n = 14
    kw = dict(alpha=torch.full((n,), 0.6), beta=torch.full((n,), 0.85), threshold=torch.ones(n), init_hidden=True,
              reset_mechanism="zero")
    layer = snn.RSynaptic(linear_features=n, **kw) if recurrent else snn.Synaptic(**kw)
    net = torch.nn.Sequential(torch.nn.Linear(10, n), layer, torch.nn.Linear(n, 5),
                              snn.Leaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5), init_hidden=True,
                                        reset_mechanism="zero"))
    with torch.no_grad():
        net[0].weight.mul_(2)
        net[2].weight.mul_(3)
    _check_snntorch(net, (10,), [1, 3], _spikes(40, 4, (10,)))


def test_snntorch_conv_net():
    """snntorch's export_to_nir traces one sample: with a batch axis NIR's type inference fails, and without one
    ``nn.Flatten()`` (start_dim 1) flattens the wrong axes; ``nn.Flatten(-3)`` exports and runs batched."""
    import snntorch as snn

    torch.manual_seed(4)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        snn.Leaky(beta=torch.full((4, 8, 8), 0.85), threshold=torch.ones(4, 8, 8), init_hidden=True,
                  reset_mechanism="zero"),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(-3), torch.nn.Linear(64, 6),
        snn.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), init_hidden=True, reset_mechanism="zero"))
    with torch.no_grad():
        net[0].weight.mul_(2)
        net[4].weight.mul_(4)
    _check_snntorch(net, (2, 8, 8), [1, 5], _spikes(30, 3, (2, 8, 8)))


@pytest.mark.parametrize("cell", ["LIFCell", "LIFBoxCell"])
def test_norse_lif_and_lifbox(cell):
    import norse.torch as norse

    torch.manual_seed(5)
    model = norse.SequentialState(torch.nn.Linear(10, 16, bias=False), getattr(norse, cell)(),
                                  torch.nn.Linear(16, 5, bias=False), getattr(norse, cell)())
    with torch.no_grad():
        model[0].weight.mul_(20.0)
        model[2].weight.mul_(20.0)
    x = _spikes(60, 4, (10,))
    theirs, state = {1: [], 3: []}, [None] * 4
    with torch.no_grad():
        for t in range(x.shape[0]):
            h, state[1] = model[1](model[0](x[t]), state[1])
            o, state[3] = model[3](model[2](h), state[3])
            theirs[1].append(h)
            theirs[3].append(o)
    graph = from_nir(_quiet_import(norse.to_nir, model, torch.zeros(1, 10)), dialect="norse")
    ours = graph.forward(x.double())
    for i in (1, 3):
        spikes = torch.stack(theirs[i])
        assert spikes.sum() > 20
        assert coincidence(ours[str(i)], spikes) >= BAR, (i, coincidence(ours[str(i)], spikes))


# --------------------------------------------------------------------------------------------- spikes -> peer
def _run_snntorch(graph: Graph, x: torch.Tensor, batched: bool = True) -> dict[str, torch.Tensor]:
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir

    module = _quiet_import(import_from_nir, to_nir(graph, dialect="snntorch"))
    return _run_peer(module, graph, x, batched, reset=lambda: snn_utils.reset(module))


def _run_norse(graph: Graph, x: torch.Tensor, batched: bool = True) -> dict[str, torch.Tensor]:
    import norse.torch as norse

    module = _quiet_import(norse.from_nir, to_nir(graph, dialect="norse"))
    return _run_peer(module, graph, x, batched)


def _run_peer(module, graph, x, batched, reset=lambda: None) -> dict[str, torch.Tensor]:
    """The peer module's spikes of every population of ``graph`` (forward hooks), stepping ``x`` (T, B, ...);
    ``batched=False``: one sample at a time (the peers' Flatten flattens from dimension 0, as NIR counts)."""
    children = dict(module.named_children())
    rec: dict[str, list] = {p: [] for p in graph.populations}
    hooks = [children[p].register_forward_hook(lambda m, i, o, p=p: rec[p].append(o[0] if isinstance(o, tuple) else o))
             for p in graph.populations]
    try:
        with torch.no_grad():
            for b in ([None] if batched else range(x.shape[1])):
                reset()
                state = None
                for t in range(x.shape[0]):
                    _, state = module(x[t].float() if b is None else x[t, b].float(), state)
    finally:
        for h in hooks:
            h.remove()
    T = x.shape[0]
    if batched:
        return {p: torch.stack(v) for p, v in rec.items()}
    return {p: torch.stack([torch.stack(v[b * T:(b + 1) * T]) for b in range(x.shape[1])], 1) for p, v in rec.items()}


def _assert_peers_agree(graph: Graph, x: torch.Tensor, batched: bool = True) -> None:
    ours = graph.forward(x.double())
    for peer, run in (("snntorch", _run_snntorch), ("norse", _run_norse)):
        theirs = run(graph, x, batched)
        for p in graph.populations:
            assert ours[p].sum() > 20, f"{p} barely spikes"
            c = coincidence(ours[p], theirs[p].reshape(ours[p].shape))
            assert c >= BAR, (peer, p, c)


TRAIN = dict(dataset="synthetic", width=12, n_time_bins=6, batch_size=16, train_limit=48, test_limit=16, epochs=1,
             threads=1, progress=False, neuron="lif_zero", gain=3.0, lr=5e-3)


@pytest.mark.parametrize("model", ["mlp_snn", "conv_snn"])
def test_spikes_trained_network_runs_the_same_in_snntorch_and_norse(tmp_path, model):
    train(flat_config(model=model, **TRAIN), tmp_path / model, log=lambda m: None)
    net, shape, _ = load_model(tmp_path / model / "checkpoint.pt")
    graph = net.to_graph(input_shape=shape)
    x = _spikes(25, 6, shape, p=0.4, seed=7)
    _assert_peers_agree(graph, x, batched=False)          # both start with a Flatten: one sample at a time


@pytest.mark.parametrize("kind", ["recurrent", "cuba"])
def test_recurrent_and_current_based_graphs_run_the_same_in_both_peers(kind):
    rng = np.random.default_rng(8)
    p = NeuronParameters(alpha=0.9, alpha_syn=0.6 if kind == "cuba" else 0.0, v_th=1.0, reset="zero")
    nodes = {"input": Input((10,)), "fc1": Affine(rng.normal(size=(16, 10)) * 0.8, rng.normal(size=16) * 0.1),
             "lif1": Neurons((16,), p), "fc2": Affine(rng.normal(size=(5, 16)) * 0.8, None),
             "lif2": Neurons((5,), p), "output": Output((5,))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    if kind == "recurrent":
        nodes["rec"] = Affine(rng.normal(size=(16, 16)) * 0.5, None)
        edges += [("lif1", "rec"), ("rec", "lif1")]
    _assert_peers_agree(Graph(nodes, edges), _spikes(40, 3, (10,), seed=9))


def test_export_for_a_peer_names_each_layer_it_cannot_represent(tmp_path):
    train(flat_config(model="mlp_snn", **{**TRAIN, "neuron": "lif"}), tmp_path / "sub", log=lambda m: None)
    net, shape, _ = load_model(tmp_path / "sub" / "checkpoint.pt")
    graph = net.to_graph(input_shape=shape)
    for peer in ("snntorch", "norse"):
        with pytest.raises(PeerExportError, match=rf"for {peer}.*'2_neurons': resets by subtraction.*'4_neurons'") as e:
            to_nir(graph, dialect=peer)
        assert [name for name, _ in e.value.problems] == ["2_neurons", "4_neurons", "6_neurons"]
    from spikes.cli import main
    assert main(["export", str(tmp_path / "sub" / "checkpoint.pt"), "--to", "nir", "--nir-for", "norse"]) == 2
    assert not (tmp_path / "sub" / "checkpoint.nir").exists()          # refused before anything is written


def test_spikes_export_nir_for_snntorch_writes_what_it_imports(tmp_path):
    import nir
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir

    from spikes.cli import main
    train(flat_config(model="mlp_snn", **TRAIN), tmp_path / "z", log=lambda m: None)
    out = tmp_path / "z.nir"
    assert main(["export", str(tmp_path / "z" / "checkpoint.pt"), "--to", "nir", "--nir-for", "snntorch",
                 "--out", str(out)]) == 0
    net, shape, _ = load_model(tmp_path / "z" / "checkpoint.pt")
    graph = net.to_graph(input_shape=shape)
    x = _spikes(25, 2, shape, p=0.4, seed=3)
    module = _quiet_import(import_from_nir, nir.read(str(out)))
    theirs = _run_peer(module, graph, x, batched=False, reset=lambda: snn_utils.reset(module))
    ours = graph.forward(x.double())
    assert all(coincidence(ours[p], theirs[p].reshape(ours[p].shape)) >= BAR for p in graph.populations)


# ------------------------------------------------------------------------------------- per-neuron parameters
def test_per_neuron_time_constants_and_thresholds_cross_both_ways(tmp_path):
    """A snntorch net with a learned decay and threshold per neuron: imported per neuron, written to and read back
    from a NIR file unchanged, run by norse the same; snntorch's own importer takes one threshold per layer and
    Lava one value per population: both refusals name the layer."""
    import snntorch as snn

    from spikes.deploy.network import lower
    from spikes.deploy.nir_io import read_nir, write_nir

    torch.manual_seed(6)
    g = torch.Generator().manual_seed(6)
    net = torch.nn.Sequential(
        torch.nn.Linear(10, 16), snn.Leaky(beta=0.7 + 0.25 * torch.rand(16, generator=g),
                                           threshold=0.7 + 0.6 * torch.rand(16, generator=g), init_hidden=True,
                                           reset_mechanism="zero", learn_beta=True, learn_threshold=True),
        torch.nn.Linear(16, 5), snn.Leaky(beta=0.6 + 0.3 * torch.rand(5, generator=g), threshold=torch.ones(5),
                                          init_hidden=True, reset_mechanism="zero", learn_beta=True))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    x = _spikes(40, 4, (10,), seed=11)
    _check_snntorch(net, (10,), [1, 3], x)
    from snntorch.export_nir import export_to_nir
    graph = from_nir(_quiet_import(export_to_nir, net, torch.zeros(10)), dialect="snntorch", reset="zero")
    hidden = graph.nodes["1"]
    assert sorted(hidden.per_neuron) == ["alpha", "v_th"]
    assert hidden.values("v_th") == pytest.approx(net[1].threshold.detach().double().numpy(), rel=1e-6)
    assert 1 - hidden.values("alpha") == pytest.approx(1 - net[1].beta.detach().double().numpy(), rel=1e-5)
    write_nir(graph, tmp_path / "per_neuron.nir")
    back, ours = read_nir(tmp_path / "per_neuron.nir").forward(x.double()), graph.forward(x.double())
    assert all(torch.equal(back[p], ours[p]) for p in graph.populations)
    theirs = _run_norse(graph, x)
    for p in graph.populations:
        assert coincidence(ours[p], theirs[p]) >= BAR, (p, coincidence(ours[p], theirs[p]))
    with pytest.raises(PeerExportError, match=r"layer '1': 16 different thresholds"):
        to_nir(graph, dialect="snntorch")
    with pytest.raises(ValueError, match=r"layer '1' has per-neuron alpha, v_th \(16 distinct alpha, 16 distinct v_th\)"):
        lower(graph)


def test_per_neuron_decays_reach_snntorch_and_norse_from_spikes():
    rng = np.random.default_rng(12)
    p = NeuronParameters(alpha=0.9, v_th=1.0, reset="zero")
    nodes = {"input": Input((10,)), "fc1": Affine(rng.normal(size=(16, 10)), rng.normal(size=16) * 0.1),
             "lif1": Neurons((16,), p, per_neuron={"alpha": rng.uniform(0.6, 0.97, 16)}),
             "fc2": Affine(rng.normal(size=(5, 16)), None),
             "lif2": Neurons((5,), p, per_neuron={"alpha": rng.uniform(0.6, 0.97, 5)}), "output": Output((5,))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    _assert_peers_agree(Graph(nodes, edges), _spikes(40, 3, (10,), seed=13))


def test_norse_per_neuron_time_constants_import():
    import norse.torch as norse

    torch.manual_seed(14)
    g = torch.Generator().manual_seed(14)
    cell = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.empty(16).uniform_(50, 300, generator=g),
                                                   v_th=torch.empty(16).uniform_(0.5, 1.5, generator=g),
                                                   v_leak=torch.zeros(16)))   # norse's to_nir needs equal shapes
    model = norse.SequentialState(torch.nn.Linear(10, 16, bias=False), cell)
    with torch.no_grad():
        model[0].weight.mul_(30.0)
    x = _spikes(60, 4, (10,), seed=15)
    theirs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            z, state = model[1](model[0](x[t]), state)
            theirs.append(z)
    graph = from_nir(_quiet_import(norse.to_nir, model, torch.zeros(1, 10)), dialect="norse")
    assert sorted(graph.nodes["1"].per_neuron) == ["alpha", "v_th"]
    ours = graph.forward(x.double())["1"]
    theirs = torch.stack(theirs)
    assert theirs.sum() > 20 and coincidence(ours, theirs) >= BAR, coincidence(ours, theirs)


def test_spikes_trained_per_neuron_decays_and_thresholds_export_faithfully(tmp_path):
    """mlp_snn with neuron plif_neuron learns a decay and a threshold per neuron through the trainer; its graph
    keeps them per neuron, a NIR file round trip is bit-exact, norse runs it the same, and snntorch's importer
    (one threshold per layer) and Lava (one value per population) refuse it naming the layers."""
    from spikes.deploy.network import lower
    from spikes.deploy.nir_io import read_nir, write_nir

    train(flat_config(model="mlp_snn", **{**TRAIN, "neuron": "plif_neuron", "lr": 2e-2}), tmp_path / "pn",
          log=lambda m: None)
    net, shape, _ = load_model(tmp_path / "pn" / "checkpoint.pt")
    graph = net.to_graph(input_shape=shape)
    hidden = graph.nodes["2_neurons"]
    assert sorted(hidden.per_neuron) == ["alpha", "v_th"]              # learned apart from their common start
    assert hidden.values("alpha") == pytest.approx(torch.sigmoid(net.features[2].w).detach().double().numpy())
    x = _spikes(25, 4, shape, p=0.4, seed=7)
    ours = graph.forward(x.double())
    with torch.no_grad():
        assert torch.equal(ours["6_neurons"].sum(0).float(), net(x.float()))   # the graph is the trained model
    write_nir(graph, tmp_path / "pn.nir")
    back = read_nir(tmp_path / "pn.nir").forward(x.double())
    assert all(torch.equal(back[p], ours[p]) for p in graph.populations)
    theirs = _run_norse(graph, x, batched=False)
    assert sum(float(ours[p].sum()) for p in graph.populations) > 100
    for p in graph.populations:      # the output layer fires little: >= 99 % of few spikes is all of them
        assert coincidence(ours[p], theirs[p].reshape(ours[p].shape)) >= BAR, p
    with pytest.raises(PeerExportError, match=r"layer '2_neurons': \d+ different thresholds"):
        to_nir(graph, dialect="snntorch")
    with pytest.raises(ValueError, match=r"layer '2_neurons' has per-neuron alpha, v_th"):
        lower(graph)
