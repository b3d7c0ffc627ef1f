"""Adaptive LIF (ALIF), as in e-prop (Bellec et al. 2020): every spike raises the threshold, which decays back.

``theta[t] = v_th + beta a[t-1];  s[t] = H(v[t] - theta[t]);  a[t] = rho a[t-1] + s[t]``, with
``rho = exp(-dt / tau_a)``; the reset subtracts ``v_th`` (not ``theta``). Lava's LIF has no adaptive
threshold: exporting an ALIF population is refused with a clear error.
"""
from __future__ import annotations

from spikes.neurons.dynamics import NeuronParameters
from spikes.neurons.module import SpikingNeuron
from spikes.surrogates import Surrogate


class ALIF(SpikingNeuron):
    """Adaptive-threshold LIF population."""

    def __init__(self, alpha: float = 0.95, rho: float = 0.995, beta: float = 1.8, v_th: float = 1.0,
                 reset: str = "subtract", refractory_steps: int = 0, surrogate: Surrogate | None = None,
                 stateful: bool = False):
        if beta <= 0:
            raise ValueError(f"ALIF needs beta > 0 (use LIF for a fixed threshold), got {beta}")
        super().__init__(NeuronParameters(alpha=alpha, rho=rho, beta=beta, v_th=v_th, reset=reset,
                                          refractory_steps=refractory_steps,
                                          surrogate=surrogate or Surrogate("triangle", 0.3, v_th)),
                         stateful=stateful)
