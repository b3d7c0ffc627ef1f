"""NIR interchange: our round trip, and networks trained in snntorch and norse imported through NIR agree
with their own library (float) and keep their accuracy on the quantised sim backend."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from spikes.deploy.classify import predict
from spikes.deploy.digits_task import digits_split, encode
from spikes.deploy.network import lower
from spikes.deploy.nir_io import from_nir, read_nir, to_nir, write_nir
from spikes.deploy.quantize import quantize
from spikes.deploy.random_graphs import random_graph, random_input


def test_round_trip_through_nir_file_keeps_every_spike(tmp_path):
    for i, kind in enumerate(("dense", "recurrent", "conv", "skip", "dense", "conv")):
        seed = 500 + i
        while True:   # NIR has no CubaLIF without membrane leak: draw until the graph is expressible
            graph, shape = random_graph(kind, seed, bias=False)
            try:
                to_nir(graph)
                break
            except ValueError as exc:
                assert "alpha < 1" in str(exc)
                seed += 100
        path = tmp_path / f"{kind}{i}.nir"
        write_nir(graph, path)
        back = read_nir(path)
        x = torch.as_tensor(random_input(shape, 20, 2, i))
        a, b = graph.forward(x), back.forward(x)
        for pop in graph.populations:
            assert torch.equal(a[pop], b[pop]), (kind, pop)


def test_bad_nir_input_is_refused_clearly(tmp_path):
    import nir

    bad = tmp_path / "bad.nir"
    bad.write_text("not hdf5")
    with pytest.raises(ValueError, match="bad.nir"):
        read_nir(bad)
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                            "fc": nir.Linear(weight=np.ones((2, 3))),
                            "lif": nir.LIF(tau=np.array([1e-2, 2e-2]), r=np.ones(2), v_leak=np.zeros(2),
                                           v_threshold=np.ones(2)),
                            "output": nir.Output(output_type={"output": np.array([2])})},
                     edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    graph = from_nir(g)        # per-neuron time constants are kept ...
    assert graph.nodes["lif"].values("alpha").tolist() == pytest.approx([1 - 1e-3 / 1e-2, 1 - 1e-3 / 2e-2])
    with pytest.raises(ValueError, match="layer 'lif' has per-neuron alpha.*one du/dv/vth/bias per population"):
        lower(graph)           # ... and Lava, one value per population, refuses them naming the layer


def _accuracy_and_agreement(graph, run_library, x, y, pops):
    """Library spikes vs our float graph (all listed layers), and accuracies: library, ours on sim."""
    ours = graph.forward(torch.as_tensor(x, dtype=torch.float64))
    theirs = run_library(torch.as_tensor(x))
    agree = np.mean([(ours[p].numpy() == theirs[i]).mean() for i, p in enumerate(pops)])
    acc_lib = float((theirs[-1].sum(0).argmax(1) == y).mean())
    acc_sim = float((predict(quantize(lower(graph)), x, "sim") == y).mean())
    return agree, acc_lib, acc_sim


def _train_in_library(model, run, xtr, ytr, lr: float, epochs: int = 3, batch: int = 50) -> None:
    """Train ``model`` in its own library: Adam on the cross-entropy of output spike counts, ``run(x) ->
    (hidden, out)`` stepping the library's cells, fresh Poisson encodings each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr)
    for epoch in range(epochs):
        xe = torch.as_tensor(encode(xtr, seed=epoch))
        for i in range(0, len(ytr), batch):
            _, out = run(xe[:, i:i + batch])
            loss = torch.nn.functional.cross_entropy(out.sum(0), torch.as_tensor(ytr[i:i + batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.mark.slow
def test_snntorch_network_imported_through_nir():
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.set_num_threads(2)
    xtr, ytr, xte, yte = digits_split()
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 48, bias=False),
        snn.Leaky(beta=torch.full((48,), 0.9), threshold=torch.ones(48), init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(48, 10, bias=False),
        snn.Leaky(beta=torch.full((10,), 0.9), threshold=torch.ones(10), init_hidden=True, reset_mechanism="zero",
                  output=True))

    def run_snn(x):
        snn_utils.reset(net)
        hidden, out = [], []
        for t in range(x.shape[0]):
            h = net[1](net[0](x[t]))
            spk, _ = net[3](net[2](h))
            hidden.append(h)
            out.append(spk)
        return torch.stack(hidden), torch.stack(out)

    _train_in_library(net, run_snn, xtr, ytr, lr=3e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = from_nir(export_to_nir(net, torch.zeros(64)), dialect="snntorch")
    x = encode(xte, seed=99)
    with torch.no_grad():
        agree, acc_lib, acc_sim = _accuracy_and_agreement(
            graph, lambda v: [a.numpy() for a in run_snn(v.float())], x, yte, ["1", "3"])
    assert acc_lib > 0.8
    assert agree >= 0.99, agree
    assert abs(acc_sim - acc_lib) <= 0.01, (acc_lib, acc_sim)


def test_snntorch_synaptic_zero_reset_maps_to_one_refractory_step():
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Linear(8, 12), snn.Synaptic(
        alpha=torch.full((12,), 0.5), beta=torch.full((12,), 0.9), threshold=torch.ones(12), init_hidden=True,
        reset_mechanism="zero", output=True))
    with torch.no_grad():
        net[0].weight.mul_(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = from_nir(export_to_nir(net, torch.zeros(8)), dialect="snntorch")
    x = (torch.rand(40, 4, 8) < 0.3).float()
    snn_utils.reset(net)
    with torch.no_grad():
        ref = torch.stack([net(x[t])[0] for t in range(40)])
    ours = graph.forward(x.double())["1"]
    assert ref.sum() > 20 and (ours.float() == ref).float().mean() >= 0.99
    with pytest.raises(ValueError, match="'1'.*refractory"):
        quantize(lower(graph))


@pytest.mark.slow
def test_norse_network_imported_through_nir():
    import norse.torch as norse

    torch.set_num_threads(2)
    xtr, ytr, xte, yte = digits_split()
    model = norse.SequentialState(torch.nn.Linear(64, 48, bias=False), norse.LIFCell(),
                                  torch.nn.Linear(48, 10, bias=False), norse.LIFBoxCell())
    with torch.no_grad():
        model[0].weight.mul_(10.0)
        model[2].weight.mul_(10.0)

    def run_norse(x):
        state, hidden, out = None, [], []
        state = [None] * 4
        for t in range(x.shape[0]):
            h0 = model[0](x[t])
            h, state[1] = model[1](h0, state[1])
            o, state[3] = model[3](model[2](h), state[3])
            hidden.append(h)
            out.append(o)
        return torch.stack(hidden), torch.stack(out)

    _train_in_library(model, run_norse, xtr, ytr, lr=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = from_nir(norse.to_nir(model, torch.zeros(1, 64)), dialect="norse")
    x = encode(xte, seed=99)
    with torch.no_grad():
        agree, acc_lib, acc_sim = _accuracy_and_agreement(
            graph, lambda v: [a.numpy() for a in run_norse(v.float())], x, yte, ["1", "3"])
    assert acc_lib > 0.6, acc_lib                # learnt (chance: 0.1)
    assert agree >= 0.99, agree
    assert abs(acc_sim - acc_lib) <= 0.01, (acc_lib, acc_sim)
