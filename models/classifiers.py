"""Small spiking classifiers for event frames, built by name (``build_classifier("conv_snn", ...)``).

Input is a spike/event-count sequence, time first ``(T, B, C, H, W)``; the output is per-class logits ``(B, K)``.
Synaptic layers (Conv2d, Linear, pooling) are wrapped in :class:`spikes.layers.TimeDistributed` (one big
conv over T*B), each followed by a spiking population from :mod:`spikes.neurons`.

Readouts (``readout``):

- ``"count"``: the output layer is a spiking population; ``logits[b, k] = sum_t s[t, b, k]`` (spike counts).
- ``"membrane"``: the output layer is a non-spiking, non-leaky integrator of the last Linear's current
  ``I``; ``logits = v[T] / T = mean_t I[t]`` (its membrane at the end, normalised by T).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from spikes.graph import Graph, capture_sequence
from spikes.layers import TimeDistributed
from spikes.neurons import ALIF, IF, LIF, PLIF, CubaLIF, SpikingNeuron

NEURON_KINDS: dict[str, Callable[[], SpikingNeuron]] = {
    "lif": lambda: LIF(alpha=0.9, v_th=1.0, reset="subtract"),
    "lif_zero": lambda: LIF(alpha=0.9, v_th=1.0, reset="zero"),    # what snntorch's and norse's NIR importers build
    "if": lambda: IF(v_th=1.0, reset="subtract"),
    "plif": lambda: PLIF(alpha0=0.5, v_th=1.0),
    "cuba": lambda: CubaLIF(alpha=0.9, alpha_syn=0.5, v_th=1.0, reset="subtract"),
    "alif": lambda: ALIF(alpha=0.9, rho=0.95, beta=0.2, v_th=1.0),
}
READOUTS = ("count", "membrane")


def make_neuron(kind: str) -> SpikingNeuron:
    """A fresh spiking population of the named kind (``lif``, ``lif_zero``, ``if``, ``plif``, ``cuba``, ``alif``)."""
    try:
        return NEURON_KINDS[kind]()
    except KeyError:
        raise ValueError(f"unknown neuron kind {kind!r}; choose one of {sorted(NEURON_KINDS)}") from None


class SpikingClassifier(nn.Module):
    """``features`` (TimeDistributed synapses + neurons) -> ``head`` (TimeDistributed Linear) -> readout."""

    def __init__(self, features: nn.Sequential, head: nn.Module, readout: str, neuron: str):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; choose one of {READOUTS}")
        self.features = features
        self.head = head
        self.readout = readout
        self.output = make_neuron(neuron) if readout == "count" else None

    def to_graph(self, input_shape: tuple[int, ...]) -> Graph:
        """The deploy graph: ``features``, ``head`` and the spiking ``output`` in order (``count`` readout only:
        the ``membrane`` readout has no spiking output)."""
        if self.readout != "count":
            raise ValueError(f"{type(self).__name__}: readout {self.readout!r} has no spiking output; export "
                             "needs readout='count'")
        return capture_sequence([("features", self.features), ("head", self.head), ("output", self.output)],
                                input_shape, type(self).__name__)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"{type(self).__name__} needs input (T, B, C, H, W), got shape {tuple(x.shape)}")
        current = self.head(self.features(x))            # (T, B, K)
        if self.output is not None:
            return self.output(current).sum(0)           # spike counts
        return current.mean(0)                           # integrator membrane v[T] / T


def _scaled_init(module: nn.Module, gain: float) -> None:
    """Kaiming-uniform weights times ``gain``: spiking layers need larger currents than ReLU nets to fire."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))
            with torch.no_grad():
                m.weight.mul_(gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def conv_snn(input_shape: tuple[int, int, int], n_classes: int, width: int = 8, neuron: str = "lif",
             readout: str = "count", gain: float = 2.0) -> SpikingClassifier:
    """conv3x3(C->w) - neuron - avgpool2 - conv3x3(w->2w) - neuron - avgpool2 - linear(->K) - readout."""
    c, h, w = input_shape
    features = nn.Sequential(
        TimeDistributed(nn.Conv2d(c, width, 3, padding=1)), make_neuron(neuron),
        TimeDistributed(nn.AvgPool2d(2)),
        TimeDistributed(nn.Conv2d(width, 2 * width, 3, padding=1)), make_neuron(neuron),
        TimeDistributed(nn.AvgPool2d(2)),
        TimeDistributed(nn.Flatten()),
    )
    head = TimeDistributed(nn.Linear(2 * width * (h // 4) * (w // 4), n_classes))
    model = SpikingClassifier(features, head, readout, neuron)
    _scaled_init(model, gain)
    return model


def mlp_snn(input_shape: tuple[int, int, int], n_classes: int, width: int = 64, neuron: str = "lif",
            readout: str = "count", gain: float = 2.0) -> SpikingClassifier:
    """flatten - linear(->w) - neuron - linear(w->w) - neuron - linear(->K) - readout."""
    n_in = int(math.prod(input_shape))
    features = nn.Sequential(
        TimeDistributed(nn.Flatten()),
        TimeDistributed(nn.Linear(n_in, width)), make_neuron(neuron),
        TimeDistributed(nn.Linear(width, width)), make_neuron(neuron),
    )
    head = TimeDistributed(nn.Linear(width, n_classes))
    model = SpikingClassifier(features, head, readout, neuron)
    _scaled_init(model, gain)
    return model


CLASSIFIERS: dict[str, Callable[..., SpikingClassifier]] = {"conv_snn": conv_snn, "mlp_snn": mlp_snn}


def build_classifier(name: str, input_shape: tuple[int, int, int], n_classes: int, **options) -> SpikingClassifier:
    """Build a classifier by name (``conv_snn`` or ``mlp_snn``) with ``width``, ``neuron``, ``readout``, ``gain``."""
    try:
        builder = CLASSIFIERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(CLASSIFIERS)}") from None
    return builder(tuple(input_shape), n_classes, **options)


def lif_mlp(n_in: int = 64, hidden: int = 48, n_out: int = 10, alpha: float = 0.9) -> nn.Sequential:
    """A deployable LIF MLP on flat inputs (zero reset, no biases): Linear - LIF - Linear - LIF, output spikes
    ``(T, B, n_out)``. An example of a plain ``nn.Module`` of spikes layers, as a user would write one
    (``--model spikes.models.classifiers:lif_mlp``)."""
    return nn.Sequential(TimeDistributed(nn.Linear(n_in, hidden, bias=False)), LIF(alpha=alpha, reset="zero"),
                         TimeDistributed(nn.Linear(hidden, n_out, bias=False)), LIF(alpha=alpha, reset="zero"))
