"""Random graphs (dense, conv, recurrent, skip, conv U-Net with skip) in the graph IR, for tests and benchmarks."""
from __future__ import annotations

import numpy as np

from spikes.graph import Affine, AvgPool2d, Conv2d, Flatten, Graph, Input, Neurons, Output, SumPool2d, Upsample
from spikes.neurons.dynamics import NeuronParameters

KINDS = ("dense", "recurrent", "conv", "skip", "conv_skip")


def _params(rng: np.random.Generator, bias: bool) -> NeuronParameters:
    alpha = float(rng.choice([1.0, rng.uniform(0.6, 0.98)]))
    alpha_syn = float(rng.choice([0.0, rng.uniform(0.3, 0.9)]))
    return NeuronParameters(alpha=alpha, alpha_syn=alpha_syn, v_th=float(rng.uniform(0.5, 2.0)), reset="zero",
                            bias=float(rng.uniform(-0.05, 0.1)) if bias else 0.0)


def _w(rng, shape, gain):
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, gain / np.sqrt(fan_in), size=shape)


def random_graph(kind: str, seed: int, bias: bool = True) -> tuple[Graph, tuple[int, ...]]:
    """A random graph of ``kind`` and its per-sample input shape."""
    rng = np.random.default_rng(seed)
    g = 2.5
    b = (lambda n: rng.normal(0, 0.1, n)) if bias else (lambda n: None)
    nodes: dict = {}
    edges: list = []
    if kind in ("dense", "recurrent", "skip"):
        n0, n1, n2, n3 = (int(x) for x in rng.integers(4, 24, size=4))
        nodes["input"] = Input((n0,))
        nodes["fc1"] = Affine(_w(rng, (n1, n0), g), b(n1))
        nodes["lif1"] = Neurons((n1,), _params(rng, bias))
        nodes["fc2"] = Affine(_w(rng, (n2, n1), g), b(n2))
        nodes["lif2"] = Neurons((n2,), _params(rng, bias))
        edges += [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2")]
        last = "lif2"
        if kind == "recurrent":
            nodes["rec"] = Affine(_w(rng, (n2, n2), 1.5))
            edges += [("lif2", "rec"), ("rec", "lif2")]
        if kind == "skip":
            nodes["fc3"] = Affine(_w(rng, (n3, n2), g), b(n3))
            nodes["lif3"] = Neurons((n3,), _params(rng, bias))
            nodes["skip1"] = Affine(_w(rng, (n3, n1), g))          # lif1 -> lif3: one layer shorter
            nodes["skip0"] = Affine(_w(rng, (n3, n0), g))          # input -> lif3: graded input delayed by 2
            edges += [("lif2", "fc3"), ("fc3", "lif3"), ("lif1", "skip1"), ("skip1", "lif3"),
                      ("input", "skip0"), ("skip0", "lif3")]
            last = "lif3"
    else:
        c0, c1 = int(rng.integers(1, 3)), int(rng.integers(2, 4))
        h, w = int(rng.integers(4, 7)), int(rng.integers(4, 7))
        nodes["input"] = Input((c0, h, w))
        nodes["conv1"] = Conv2d(_w(rng, (c1, c0, 3, 3), g), (c0, h, w), b(c1), padding=1)
        nodes["lif1"] = Neurons((c1, h, w), _params(rng, bias))
        edges += [("input", "conv1"), ("conv1", "lif1")]
        if kind == "conv":
            pool = SumPool2d((c1, h, w), 2) if rng.random() < 0.5 else AvgPool2d((c1, h, w), 2)
            nodes["pool"] = pool
            nodes["flat"] = Flatten(pool.output_shape)
            n = int(np.prod(pool.output_shape))
            n2 = int(rng.integers(3, 10))
            nodes["fc"] = Affine(_w(rng, (n2, n), g * 2), b(n2))
            nodes["lif2"] = Neurons((n2,), _params(rng, bias))
            edges += [("lif1", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "lif2")]
            last = "lif2"
        else:  # a small U-Net: down (stride 2), up (nearest), additive skip from lif1
            c2 = int(rng.integers(2, 4))
            nodes["down"] = Conv2d(_w(rng, (c2, c1, 3, 3), g), (c1, h, w), None, stride=2, padding=1)
            down_shape = nodes["down"].output_shape
            nodes["lif2"] = Neurons(down_shape, _params(rng, bias))
            nodes["up"] = Upsample(down_shape, (h, w))
            nodes["upconv"] = Conv2d(_w(rng, (c1, c2, 3, 3), g), (c2, h, w), None, padding=1)
            nodes["skipconv"] = Conv2d(_w(rng, (c1, c1, 3, 3), g), (c1, h, w), b(c1), padding=1)
            nodes["lif3"] = Neurons((c1, h, w), _params(rng, bias))
            edges += [("lif1", "down"), ("down", "lif2"), ("lif2", "up"), ("up", "upconv"), ("upconv", "lif3"),
                      ("lif1", "skipconv"), ("skipconv", "lif3")]
            last = "lif3"
    nodes["output"] = Output(nodes[last].shape)
    edges.append((last, "output"))
    return Graph(nodes, edges), nodes["input"].shape


def random_input(shape: tuple[int, ...], steps: int, batch: int, seed: int, graded: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if graded:
        return rng.poisson(0.4, size=(steps, batch, *shape)).astype(np.float64)
    return (rng.random((steps, batch, *shape)) < 0.3).astype(np.float64)
