"""The GT stage's deployer: same decision and per-layer rows as the torch model on the float backends; a GT
checkpoint's graph (``graph_of``: the model's own ``to_graph``) spikes as the network; and the demo's network (wine,
network2, 100 iterations) keeps its test accuracy on ``sim`` and ``lava-fixed``."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from spikes.models.gt_network import INPUT_BITS, GTNetwork, GTNetworkConfig, evaluate
from spikes.pipeline import checkpoints
from spikes.pipeline.gt import FULL, QUICK, deploy_gt, gt_layer_rows, spike_counts, train_stage_network
from spikes.training import CHECKPOINT_FILE


def test_float_backends_reproduce_the_torch_decision_and_rows():
    net = GTNetwork(5, 3, GTNetworkConfig(iterations=30), seed=3)
    x = np.round(np.random.default_rng(4).random((8, 5)) * 256) / 256       # exact in the graph's feature codes
    y = np.random.default_rng(5).integers(0, 3, 8)
    res = deploy_gt(net, x, y, ("torch", "sim-float", "sim"), progress=False)
    ref_rows = gt_layer_rows(net, x)
    ref_acc = evaluate(net, x, y)["accuracy"]
    for b in ("torch", "sim-float"):
        assert res[b].metric == ref_acc and res[b].samples == 8
        assert [r["layer"] for r in res[b].per_layer] == [r["layer"] for r in ref_rows] == ["gt1", "gt2"]
        for r, ref in zip(res[b].per_layer, ref_rows):
            assert r["firing_rate"] == pytest.approx(ref["firing_rate"], abs=1e-12) and r["synops"] is None
            assert (r["neurons"], r["steps"]) == (ref["neurons"], 30)
    assert all(0 < r["firing_rate"] < 1 for r in res["sim"].per_layer)
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        deploy_gt(net, x, y, ("gpu",), progress=False)


def test_checkpoint_graph_is_the_models_own_and_spikes_as_the_network(tmp_path):
    """Trained by the stage's config (quick), the checkpoint's graph is ``to_graph`` with the 12-bit feature codes:
    on the torch backend it spikes exactly as the network on features those codes represent exactly."""
    net, _ = train_stage_network(QUICK, run_dir=tmp_path)
    loaded = checkpoints.open_checkpoint(tmp_path / CHECKPOINT_FILE)
    graph = checkpoints.graph_of(loaded)
    assert loaded.input_shape == (13,) and list(graph.populations) == ["gt1", "gt2"]
    assert graph.nodes["b1"].weight.max() == 2.0**-INPUT_BITS
    x, _ = checkpoints.test_samples(loaded, 6)          # the checkpoint's own test split
    x = np.round(x * 2**INPUT_BITS) / 2**INPUT_BITS
    counts = spike_counts(loaded.model, graph, graph, x, "torch")
    assert np.array_equal(counts.sum(2), net.spike_counts(torch.as_tensor(x)).numpy())
    assert np.array_equal(counts.sum(2), loaded.model.spike_counts(torch.as_tensor(x)).numpy())


@pytest.fixture(scope="module")
def demo_network():
    """The demo stage's network: its configuration and training (one torch thread, as the stage: ~8 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    net, split = train_stage_network(FULL)
    yield net, split
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_demo_network_keeps_its_accuracy_on_sim_and_lava_fixed(demo_network):
    net, split = demo_network
    n_lava = 2
    torch_acc = evaluate(net, split.x_test, split.y_test)["accuracy"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = deploy_gt(net, split.x_test, split.y_test, ("sim", "lava-fixed"), n_lava, progress=False)
    sim, lava = res["sim"], res["lava-fixed"]
    assert sim.samples == len(split.x_test) and lava.samples == n_lava
    assert abs(sim.metric - torch_acc) <= 0.01, (sim.metric, torch_acc)
    # lava-fixed spikes exactly as sim on its samples (same rows), so it decides as sim does there
    sim_head = deploy_gt(net, split.x_test[:n_lava], split.y_test[:n_lava], ("sim",), progress=False)["sim"]
    assert lava.per_layer == sim_head.per_layer and lava.metric == sim_head.metric
    head_acc = evaluate(net, split.x_test[:n_lava], split.y_test[:n_lava])["accuracy"]
    assert lava.metric == head_acc
    ref = gt_layer_rows(net, split.x_test)
    for r, t in zip(sim.per_layer, ref):
        assert r["firing_rate"] == pytest.approx(t["firing_rate"], rel=0.05)
