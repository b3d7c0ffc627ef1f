"""The theta Lava process (deploy/processes/theta.py) against the exact event-based network: first output spikes within
one Lava time step, exact with one arrival per step, closer than the graph's grid reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

from spikes.deploy.lava_backend import import_lava  # noqa: E402

import_lava()     # Lava's runtime import sets the 'fork' start method: tolerate an earlier test having set it

pytestmark = pytest.mark.lava


def _spiking_net():
    from spikes.models.theta_network import ThetaNetwork

    net = ThetaNetwork(4, 3, hidden=(10,), coding="latency", bias_input=True, w_scale=4.0, phi0_fraction=0.6, seed=1)
    return net.eval()


def test_lava_theta_network_reproduces_the_exact_spike_times():
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
    fin = np.isfinite(exact)
    assert np.array_equal(np.isfinite(lava), fin)
    err = np.abs(lava[fin] - exact[fin])
    assert err.max() <= dt
    # the timed payloads beat the grid reference (inputs rounded to the middle of their step)
    grid = graph_first_spike_times(graph, inputs)
    assert np.array_equal(np.isfinite(grid), fin) and err.mean() < 0.5 * np.abs(grid[fin] - exact[fin]).mean()


def test_one_input_per_step_is_exact():
    """With at most one arrival per neuron and step, the timed Lava run is the exact event simulation."""
    from spikes.deploy.processes.theta import run_theta_lava
    from spikes.models.theta_network import ThetaNetwork

    net = ThetaNetwork(1, 1, hidden=(1,), coding="latency", input_start=0.1, input_span=1.0, phi0_fraction=0.62).eval()
    with torch.no_grad():
        net.layers[0].weight.fill_(2.5)
        net.layers[1].weight.fill_(1.5)
    x = torch.tensor([[0.1], [0.5], [0.93]], dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
    assert int(out.hidden_counts.min()) == 1 and torch.isfinite(out.ordinary).all()
    lava = run_theta_lava(net.to_graph(dt=0.01), net.grid_inputs(x, 0.01), copies=3)
    assert np.abs(lava - out.ordinary.numpy()).max() < 1e-9


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
