"""The theta Lava process (deploy/processes/theta.py) against the graph's grid reference (same spikes) and the exact
event-based network (first output spikes within one Lava time step); NIR export refuses theta populations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

pytestmark = pytest.mark.lava


def _spiking_net():
    from spikes.models.theta_network import ThetaNetwork

    net = ThetaNetwork(4, 3, hidden=(10,), coding="latency", bias_input=True, w_scale=4.0, phi0_fraction=0.6, seed=1)
    return net.eval()


def test_lava_theta_network_matches_the_grid_reference_and_the_exact_times():
    from spikes.deploy.processes.theta import graph_first_spike_times, run_theta_lava

    net = _spiking_net()
    x = torch.rand(24, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = net(x)
    exact = out.ordinary.numpy()
    assert 0.1 < np.isfinite(exact).mean() < 0.9 and int(out.hidden_counts.sum()) > 0   # spikes and silences
    dt = 0.01
    graph = net.to_graph(dt=dt)
    inputs = net.grid_inputs(x, dt)
    lava = run_theta_lava(graph, inputs, copies=5)                    # 5 side by side, 5 back to back (one idle)
    ref = graph_first_spike_times(graph, inputs)
    assert np.array_equal(np.isfinite(lava), np.isfinite(ref)) and np.array_equal(lava[np.isfinite(ref)],
                                                                                  ref[np.isfinite(ref)])
    fin = np.isfinite(exact)
    assert np.array_equal(np.isfinite(lava), fin)
    assert np.abs(lava[fin] - exact[fin]).max() <= dt


def test_runner_refuses_graphs_it_cannot_run():
    from spikes.deploy.processes.theta import run_theta_lava
    from spikes.graph import Affine, Graph, Input, Neurons, Output
    from spikes.neurons import NeuronParameters

    graph = Graph({"in": Input((2,)), "w": Affine(np.ones((2, 2))), "lif": Neurons((2,), NeuronParameters()),
                   "out": Output((2,))},
                  [("in", "w"), ("w", "lif"), ("lif", "out")])
    with pytest.raises(ValueError, match="'w' must feed a Theta population"):
        run_theta_lava(graph, np.zeros((3, 1, 2)))
    with pytest.raises(ValueError, match="inputs have 3 channels"):
        run_theta_lava(_spiking_net().to_graph(), np.zeros((3, 1, 3)))
