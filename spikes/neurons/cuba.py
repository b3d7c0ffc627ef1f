"""Current-based LIF (CuBa): a leaky synaptic current feeds a leaky membrane.

``i[t] = alpha_syn i[t-1] + x[t];  v[t] = alpha v[t-1] + i[t] + bias;  s = H(v - v_th)``, then reset.
Lava: ``du = 4096 (1 - alpha_syn) - 1``, ``dv = 4096 (1 - alpha)``. NIR: ``CubaLIF`` with
``tau_syn = dt / (1 - alpha_syn)``, ``w_in = tau_syn / dt``, ``tau_mem = dt / (1 - alpha)``, ``r = tau_mem / dt``.
"""
from __future__ import annotations

from spikes.neurons.dynamics import NeuronParameters
from spikes.neurons.module import SpikingNeuron
from spikes.surrogates import Surrogate


class CubaLIF(SpikingNeuron):
    """Current-based LIF population."""

    def __init__(self, alpha: float = 0.9, alpha_syn: float = 0.8, v_th: float = 1.0, reset: str = "zero",
                 bias: float = 0.0, refractory_steps: int = 0, surrogate: Surrogate | None = None,
                 stateful: bool = False):
        super().__init__(NeuronParameters(alpha=alpha, alpha_syn=alpha_syn, v_th=v_th, reset=reset, bias=bias,
                                          refractory_steps=refractory_steps, surrogate=surrogate or Surrogate()),
                         stateful=stateful)
