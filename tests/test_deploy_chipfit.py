"""Chip-fit report: hand-counted resources, and clear problems for what cannot map."""
from __future__ import annotations

import numpy as np

from spikes.deploy.chipfit import LoihiLimits, chip_fit
from spikes.graph import Affine, Conv2d, Flatten, Graph, Input, Neurons, Output
from spikes.deploy.network import lower
from spikes.neurons.dynamics import NeuronParameters


def _graph(reset: str = "zero") -> Graph:
    p = NeuronParameters(reset=reset)
    nodes = {"input": Input((2, 8, 8)), "conv": Conv2d(np.ones((4, 2, 3, 3)), (2, 8, 8), padding=1),
             "hidden": Neurons((4, 8, 8), p), "flat": Flatten((4, 8, 8)),
             "fc": Affine(np.ones((10, 256))), "out": Neurons((10,), p), "output": Output((10,))}
    edges = [("input", "conv"), ("conv", "hidden"), ("hidden", "flat"), ("flat", "fc"), ("fc", "out"), ("out", "output")]
    return Graph(nodes, edges)


def test_counts_by_hand():
    fit = chip_fit(lower(_graph()), LoihiLimits(neurons_per_core=100, memory_per_core=1024))
    conv, fc = fit.layers
    assert (conv.neurons, conv.synapses) == (256, 256 * 2 * 9)       # every output sees 2x3x3 inputs (padding counted)
    assert conv.weight_bytes == 4608 and conv.cores == max(3, 5)     # ceil(256/100) = 3, ceil(4608/1024) = 5
    assert (fc.neurons, fc.synapses, fc.cores) == (10, 2560, 3)      # ceil(2560 / 1024) = 3
    assert fit.ok and fit.cores == 8 and fit.chips == 1
    shared = chip_fit(lower(_graph()), LoihiLimits(share_conv_weights=True))
    assert shared.layers[0].weight_bytes == 72


def test_problems_name_the_layer():
    fit = chip_fit(lower(_graph("subtract")), LoihiLimits(cores_per_chip=1, max_chips=1))
    text = fit.format()
    assert not fit.ok
    assert "'hidden'" in text and "subtract" in text and "chips" in text


def test_capacity_problems_are_told_apart():
    """A network that is only too big (more chips would do) lists that under ``capacity``; a problem of another kind
    (an unsupported reset) is not among them, so export can tell "write it, warn" from "refuse"."""
    big = chip_fit(lower(_graph()), LoihiLimits(neurons_per_core=100, memory_per_core=1024, cores_per_chip=4))
    assert not big.ok and big.chips == 2 and big.capacity == big.problems == [
        "needs 8 cores = 2 chips, more than max_chips=1"]
    assert chip_fit(lower(_graph()), LoihiLimits(neurons_per_core=100, memory_per_core=1024, cores_per_chip=4,
                                                 max_chips=2)).ok
    bad = chip_fit(lower(_graph("subtract")), LoihiLimits(cores_per_chip=1, max_chips=1))
    assert bad.capacity and set(bad.problems) - set(bad.capacity)
