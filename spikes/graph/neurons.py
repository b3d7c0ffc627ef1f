"""``Neurons``: a population of the integrate-and-fire family (``spikes.neurons.NeuronParameters``).

Equations in ``spikes.neurons.dynamics``. The population's input current is the sum over all edges into it
(additive skips); an edge from a population back to itself through a linear node is a recurrent
connection and carries the previous step's spikes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch

from spikes.graph.node import PopulationNode, as_shape, as_steps
from spikes.neurons.dynamics import NeuronParameters, PerNeuronParameters, neuron_step

PER_NEURON = ("alpha", "v_th", "bias")


@dataclass(eq=False)
class Neurons(PopulationNode):
    """Population of ``shape`` with ``params`` (one value per population, bias included).

    ``input_delay``: the summed input reaches the population ``input_delay`` steps later (norse's CuBa LIF
    updates v with the previous step's current: ``input_delay = 1``).
    ``per_neuron``: ``alpha``, ``v_th`` and/or ``bias`` with one value per neuron (arrays of ``shape``), in place of
    the field of ``params`` (what NIR graphs of snntorch or norse layers with learned per-neuron time constants or
    thresholds carry); values that are all equal go to ``params``. The float reference runs them; Lava takes one
    value per population, so lowering refuses them naming the layer. :meth:`values` gives any of the three per
    neuron either way.
    """

    shape: tuple[int, ...]
    params: NeuronParameters
    input_delay: int = 0
    per_neuron: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shape = as_shape(self.shape, "Neurons.shape")
        if not isinstance(self.params, NeuronParameters):
            raise ValueError(f"Neurons: params must be NeuronParameters, got {type(self.params).__name__}")
        self.input_delay = as_steps(self.input_delay, "Neurons: input_delay")
        per = {}
        for key, value in dict(self.per_neuron or {}).items():
            if key not in PER_NEURON:
                raise ValueError(f"Neurons: per_neuron key {key!r} is not one of {PER_NEURON}")
            arr = np.asarray(value, dtype=np.float64)
            if arr.size == 1:
                arr = np.full(self.shape, float(arr.reshape(-1)[0]))
            if arr.size != int(np.prod(self.shape)):
                raise ValueError(f"Neurons: per_neuron[{key!r}] has {arr.size} values, the population {self.shape} "
                                 f"has {int(np.prod(self.shape))} neurons")
            if np.all(arr == arr.flat[0]):          # one value after all: a population-wide parameter
                self.params = self.params.with_(**{key: float(arr.flat[0])})
            else:
                per[key] = arr.reshape(self.shape).copy()
        self.per_neuron = per
        self._step_params = None
        if per:
            scalars = {f.name: getattr(self.params, f.name) for f in fields(NeuronParameters)}
            self._step_params = PerNeuronParameters(**{**scalars, **{k: torch.from_numpy(v) for k, v in per.items()}})

    @property
    def uniform(self) -> bool:
        """Whether every neuron has the same parameters (per-neuron values that are all equal become ``params``)."""
        return not self.per_neuron

    def values(self, key: str) -> np.ndarray:
        """``alpha``, ``v_th`` or ``bias`` of every neuron (an array of ``shape``)."""
        if key not in PER_NEURON:
            raise ValueError(f"Neurons.values: {key!r} is not one of {PER_NEURON}")
        if key in self.per_neuron:
            return self.per_neuron[key]
        scalar = self.params.alpha_value if key == "alpha" else float(getattr(self.params, key))
        return np.full(self.shape, scalar)

    def step(self, x: torch.Tensor, state):
        if self._step_params is not None:
            p = self._step_params
            if getattr(p, next(iter(self.per_neuron))).dtype != x.dtype:
                p = PerNeuronParameters(**{f.name: (getattr(p, f.name).to(x.dtype) if f.name in self.per_neuron
                                                    else getattr(p, f.name)) for f in fields(NeuronParameters)})
                self._step_params = p
            return neuron_step(x, state, p)
        return neuron_step(x, state, self.params)
