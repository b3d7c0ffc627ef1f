"""Spike-count classification through any backend: ``predict(model, x, backend)``.

The class of a sample is the output population's neuron with the most spikes over the T input steps
(ties: lowest index). Backends with Lava timing see the output ``latency`` steps late, so the input is
padded with ``latency`` silent steps and the spikes are aligned before counting.
"""
from __future__ import annotations

import numpy as np

from spikes.deploy.backends import run
from spikes.graph import Graph
from spikes.deploy.network import Network, lower
from spikes.deploy.quantize import QNetwork


def predict(model: Graph | Network | QNetwork, x: np.ndarray, backend: str = "sim", output: str | None = None,
            **options) -> np.ndarray:
    """Predicted classes ``(B,)`` for inputs ``x`` ``(T, B, *shape)``."""
    x = np.asarray(x)
    if backend == "torch":
        out = run(model, x, "torch")
        graph = model
        pop = output or graph.predecessors(graph.outputs[0])[0]  # type: ignore[union-attr]
        counts = out[pop]["spikes"].sum(0)
    else:
        net = lower(model) if isinstance(model, Graph) else model
        pop = output or next(iter(net.outputs.values()))
        lat = net.populations[pop].latency
        padded = np.concatenate([x, np.zeros((lat, *x.shape[1:]), x.dtype)]) if lat else x
        out = run(net, padded, backend, align=True, states=False, **options)
        counts = out[pop]["spikes"][: x.shape[0]].sum(0)
    return counts.reshape(counts.shape[0], -1).argmax(1)
