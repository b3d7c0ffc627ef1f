"""Parametric LIF (PLIF, Fang et al. 2021): LIF whose membrane decay is learned.

``alpha = sigmoid(w)`` with one learnable ``w`` per population (initialised from ``alpha0``); with
``decay_input`` the input is scaled by ``1 - alpha`` (SpikingJelly's form,
``v[t] = alpha v[t-1] + (1 - alpha) x[t]``). Export uses the trained value: Lava ``dv = 4096 (1 - alpha)``
(the input gain ``1 - alpha`` folds into the incoming weights).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from spikes.neurons.dynamics import NeuronParameters
from spikes.neurons.module import SpikingNeuron
from spikes.surrogates import Surrogate


class PLIF(SpikingNeuron):
    """LIF population with a learnable membrane decay."""

    def __init__(self, alpha0: float = 0.5, v_th: float = 1.0, reset: str = "zero", decay_input: bool = True,
                 surrogate: Surrogate | None = None, stateful: bool = False):
        if not 0.0 < alpha0 < 1.0:
            raise ValueError(f"PLIF alpha0 must be in (0, 1), got {alpha0}")
        super().__init__(NeuronParameters(alpha=alpha0, v_th=v_th, reset=reset, surrogate=surrogate or Surrogate()),
                         stateful=stateful)
        self.decay_input = decay_input
        self.w = nn.Parameter(torch.tensor(math.log(alpha0 / (1.0 - alpha0))))

    @property
    def alpha(self) -> torch.Tensor:
        return torch.sigmoid(self.w)

    @property
    def params(self) -> NeuronParameters:
        return self._params.with_(alpha=self.alpha)

    def input_gain(self) -> torch.Tensor:
        return 1.0 - self.alpha if self.decay_input else torch.ones((), dtype=self.w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x * self.input_gain())

    def step(self, x, state=None):
        return super().step(x * self.input_gain(), state)
