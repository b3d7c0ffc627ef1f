"""Leaky integrate-and-fire (LIF) and integrate-and-fire (IF) populations.

LIF: ``v[t] = alpha v[t-1] + x[t] + bias;  s[t] = H(v[t] - v_th);  v[t] -= v_th s[t]`` (subtract) or
``v[t] *= 1 - s[t]`` (zero). IF is LIF with ``alpha = 1``. Lava: ``dv = 4096 (1 - alpha)``, ``du = 4095``.
NIR: ``LIF(tau = dt / (1 - alpha), r = tau / dt, v_leak = 0)``; ``IF(r = 1 / dt)``.
"""
from __future__ import annotations

import math

from spikes.neurons.dynamics import NeuronParameters
from spikes.neurons.module import SpikingNeuron
from spikes.surrogates import Surrogate


def decay_from_tau(tau: float, dt: float = 1.0, method: str = "exp") -> float:
    """Per-step decay for time constant ``tau``: ``exp(-dt/tau)`` (exact) or ``1 - dt/tau`` (Euler, NIR's)."""
    if tau <= 0 or dt <= 0:
        raise ValueError(f"tau and dt must be > 0, got tau={tau}, dt={dt}")
    if method == "exp":
        return math.exp(-dt / tau)
    if method == "euler":
        if dt > tau:
            raise ValueError(f"forward Euler needs dt <= tau, got dt={dt}, tau={tau}")
        return 1.0 - dt / tau
    raise ValueError(f"method must be 'exp' or 'euler', got {method!r}")


class LIF(SpikingNeuron):
    """LIF population; ``alpha`` is the membrane decay per step."""

    def __init__(self, alpha: float = 0.9, v_th: float = 1.0, reset: str = "subtract", bias: float = 0.0,
                 refractory_steps: int = 0, surrogate: Surrogate | None = None, stateful: bool = False):
        super().__init__(NeuronParameters(alpha=alpha, v_th=v_th, reset=reset, bias=bias,
                                          refractory_steps=refractory_steps, surrogate=surrogate or Surrogate()),
                         stateful=stateful)


class IF(SpikingNeuron):
    """Integrate-and-fire population (no leak): ``v[t] = v[t-1] + x[t]``."""

    def __init__(self, v_th: float = 1.0, reset: str = "zero", bias: float = 0.0, refractory_steps: int = 0,
                 surrogate: Surrogate | None = None, stateful: bool = False):
        super().__init__(NeuronParameters(alpha=1.0, v_th=v_th, reset=reset, bias=bias,
                                          refractory_steps=refractory_steps, surrogate=surrogate or Surrogate()),
                         stateful=stateful)
