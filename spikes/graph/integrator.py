"""``Integrator``: a non-spiking leaky integrator whose output is its potential (a readout).

Per step, for the summed input ``x[t]``::

    y[t] = alpha * y[t-1] + x[t] + bias          (y[-1] = 0; alpha = 1: perfect integrator, 0: no memory)

The output is ``y[t]`` itself (graded), e.g. the leaky readout of an e-prop network
(``y = kappa y + W z + b``) or StereoSpike's depth readout. NIR has no such node; it maps onto NIR's
``LI`` (leaky integrator) where ``alpha < 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spikes.graph.node import PopulationNode, as_array, as_shape, as_steps


@dataclass(eq=False)
class Integrator(PopulationNode):
    """Leaky integrator of ``shape``; ``alpha`` one decay per population in [0, 1]; ``bias`` scalar or per neuron."""

    shape: tuple[int, ...]
    alpha: float = 1.0
    bias: float | np.ndarray = 0.0
    input_delay: int = 0

    graded = True

    def __post_init__(self) -> None:
        self.shape = as_shape(self.shape, "Integrator.shape")
        self.alpha = float(self.alpha)
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"Integrator: alpha (decay per step) must be in [0, 1], got {self.alpha}")
        bias = as_array(self.bias, "Integrator.bias")
        if bias.ndim and bias.size != int(np.prod(self.shape)):
            raise ValueError(f"Integrator: bias must be a scalar or have {int(np.prod(self.shape))} entries "
                             f"(shape {self.shape}), got {bias.size}")
        self.bias = float(bias) if bias.ndim == 0 else bias.reshape(-1)
        self.input_delay = as_steps(self.input_delay, "Integrator: input_delay")

    def bias_vector(self) -> np.ndarray:
        """The bias per neuron (flat, C order)."""
        return np.broadcast_to(np.asarray(self.bias, dtype=np.float64), (int(np.prod(self.shape)),)).copy()

    def step(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        b = torch.as_tensor(self.bias_vector(), dtype=x.dtype).reshape(self.shape)
        y = x + b if state is None else self.alpha * state + x + b
        return y, y
