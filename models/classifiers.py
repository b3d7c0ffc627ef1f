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

NEURON_KINDS: dict[str, Callable[[tuple[int, ...]], SpikingNeuron]] = {   # called with the layer's shape
    "lif": lambda shape: LIF(alpha=0.9, v_th=1.0, reset="subtract"),
    "lif_zero": lambda shape: LIF(alpha=0.9, v_th=1.0, reset="zero"),   # what snntorch's and norse's NIR importers build
    "if": lambda shape: IF(v_th=1.0, reset="subtract"),
    "plif": lambda shape: PLIF(alpha0=0.5, v_th=1.0),
    # a learned decay and threshold per neuron (zero reset, no input decay: exports to NIR per neuron)
    "plif_neuron": lambda shape: PLIF(alpha0=0.9, v_th=1.0, reset="zero", decay_input=False, shape=shape,
                                      learn_threshold=True),
    "cuba": lambda shape: CubaLIF(alpha=0.9, alpha_syn=0.5, v_th=1.0, reset="subtract"),
    "alif": lambda shape: ALIF(alpha=0.9, rho=0.95, beta=0.2, v_th=1.0),
}
READOUTS = ("count", "membrane")


def make_neuron(kind: str, shape: tuple[int, ...] = (1,)) -> SpikingNeuron:
    """A fresh spiking population of the named kind (``lif``, ``lif_zero``, ``if``, ``plif``, ``plif_neuron``,
    ``cuba``, ``alif``) for a layer of ``shape`` (per sample; only ``plif_neuron`` keeps a value per neuron)."""
    try:
        return NEURON_KINDS[kind](tuple(shape))
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
        n_out = head.module.out_features if isinstance(getattr(head, "module", None), nn.Linear) else 1
        self.output = make_neuron(neuron, (n_out,)) if readout == "count" else None

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
        TimeDistributed(nn.Conv2d(c, width, 3, padding=1)), make_neuron(neuron, (width, h, w)),
        TimeDistributed(nn.AvgPool2d(2)),
        TimeDistributed(nn.Conv2d(width, 2 * width, 3, padding=1)), make_neuron(neuron, (2 * width, h // 2, w // 2)),
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
        TimeDistributed(nn.Linear(n_in, width)), make_neuron(neuron, (width,)),
        TimeDistributed(nn.Linear(width, width)), make_neuron(neuron, (width,)),
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
