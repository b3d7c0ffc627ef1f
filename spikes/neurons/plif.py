"""Parametric LIF (PLIF, Fang et al. 2021): LIF whose membrane decay is learned.

``alpha = sigmoid(w)`` with one learnable ``w`` per population (initialised from ``alpha0``); with
``decay_input`` the input is scaled by ``1 - alpha`` (SpikingJelly's form,
``v[t] = alpha v[t-1] + (1 - alpha) x[t]``). Export uses the trained value: Lava ``dv = 4096 (1 - alpha)``
(the input gain ``1 - alpha`` folds into the incoming weights).

``shape``: one ``w`` per neuron of that shape instead (a learned time constant per neuron), and with
``learn_threshold`` a learned threshold per neuron too (kept >= 1e-3). Such a population runs the reference loop
of ``neuron_step`` (the compiled kernels take one value per population), exports to NIR per neuron, and Lava,
which takes one value per population, refuses it by name.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from spikes.neurons.dynamics import NeuronParameters, PerNeuronParameters
from spikes.neurons.module import SpikingNeuron
from spikes.surrogates import Surrogate


class PLIF(SpikingNeuron):
    """LIF population with a learnable membrane decay."""

    def __init__(self, alpha0: float = 0.5, v_th: float = 1.0, reset: str = "zero", decay_input: bool = True,
                 surrogate: Surrogate | None = None, stateful: bool = False, shape: tuple[int, ...] | None = None,
                 learn_threshold: bool = False):
        if not 0.0 < alpha0 < 1.0:
            raise ValueError(f"PLIF alpha0 must be in (0, 1), got {alpha0}")
        if learn_threshold and not shape:
            raise ValueError("PLIF learn_threshold needs shape (a threshold per neuron)")
        super().__init__(NeuronParameters(alpha=alpha0, v_th=v_th, reset=reset, surrogate=surrogate or Surrogate()),
                         stateful=stateful)
        self.decay_input = decay_input
        self.shape = tuple(int(n) for n in shape) if shape else None
        w0 = math.log(alpha0 / (1.0 - alpha0))
        self.w = nn.Parameter(torch.full(self.shape, w0) if self.shape else torch.tensor(w0))
        self.v_th = nn.Parameter(torch.full(self.shape, float(v_th))) if learn_threshold else None

    @property
    def alpha(self) -> torch.Tensor:
        return torch.sigmoid(self.w)

    @property
    def per_neuron(self) -> bool:
        return self.shape is not None

    @property
    def params(self) -> NeuronParameters:
        if not self.per_neuron:
            return self._params.with_(alpha=self.alpha)
        p = self._params
        v_th = self.v_th.clamp_min(1e-3) if self.v_th is not None else p.v_th
        return PerNeuronParameters(alpha=self.alpha, alpha_syn=p.alpha_syn, v_th=v_th, reset=p.reset, bias=p.bias,
                                   beta=p.beta, rho=p.rho, refractory_steps=p.refractory_steps, surrogate=p.surrogate)

    def extra_repr(self) -> str:
        if not self.per_neuron:
            return super().extra_repr()
        return (f"shape={self.shape}, alpha per neuron (mean {float(self.alpha.detach().mean()):.4g}), "
                f"v_th {'per neuron' if self.v_th is not None else self._params.v_th}, reset={self._params.reset}")

    def input_gain(self) -> torch.Tensor:
        return 1.0 - self.alpha if self.decay_input else torch.ones((), dtype=self.w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x * self.input_gain())

    def step(self, x, state=None):
        return super().step(x * self.input_gain(), state)
