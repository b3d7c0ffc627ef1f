"""``Neurons``: a population of the integrate-and-fire family (``spikes.neurons.NeuronParameters``).

Equations in ``spikes.neurons.dynamics``. The population's input current is the sum over all edges into it
(additive skips); an edge from a population back to itself through a linear node is a recurrent
connection and carries the previous step's spikes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikes.graph.node import PopulationNode, as_shape, as_steps
from spikes.neurons.dynamics import NeuronParameters, neuron_step


@dataclass(eq=False)
class Neurons(PopulationNode):
    """Population of ``shape`` with ``params`` (one value per population, bias included).

    ``input_delay``: the summed input reaches the population ``input_delay`` steps later (norse's CuBa LIF
    updates v with the previous step's current: ``input_delay = 1``).
    """

    shape: tuple[int, ...]
    params: NeuronParameters
    input_delay: int = 0

    def __post_init__(self) -> None:
        self.shape = as_shape(self.shape, "Neurons.shape")
        if not isinstance(self.params, NeuronParameters):
            raise ValueError(f"Neurons: params must be NeuronParameters, got {type(self.params).__name__}")
        self.input_delay = as_steps(self.input_delay, "Neurons: input_delay")

    def step(self, x: torch.Tensor, state):
        return neuron_step(x, state, self.params)
