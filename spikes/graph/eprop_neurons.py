"""``EpropNeurons``: e-prop's LIF/ALIF population (Bellec et al. 2020; ``spikes.neurons.eprop``).

Per step, for the summed input ``x[t]`` (feed-forward and recurrent edges; a recurrent edge carries the
previous step's spikes, so ``x[t] = W_in x_in[t] + W_rec z[t-1]``)::

    v_j[t] = alpha v_j[t-1] + x_j[t] - v_th z_j[t-1]          (the reset enters the next step, undecayed)
    a_j[t] = rho a_j[t-1] + z_j[t-1]
    z_j[t] = H(v_j[t] - v_th - beta_j a_j[t])   and 0 while refractory (n_ref steps after a spike)

``H(x) = 1 if x > 0``; the membrane keeps integrating while refractory; ``v[0] = a[0] = z[0] = 0``. ``beta_j``
is one value per neuron (0: LIF, > 0: ALIF). These are not the core family's equations
(``spikes.graph.Neurons``: reset in the same step, v held while refractory), so e-prop networks get
their own node, lowered to their own population kind (``spikes.deploy.populations.eprop``). ``step`` is
``spikes.neurons.eprop.eprop_neuron_step`` (the pseudo-derivative it also returns is dropped here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from spikes.graph.node import PopulationNode, as_array, as_shape, as_steps
from spikes.neurons.eprop import EpropParameters, EpropState, eprop_initial_state, eprop_neuron_step


@dataclass(eq=False)
class EpropNeurons(PopulationNode):
    """e-prop LIF/ALIF population of ``shape``: ``alpha``, ``rho`` decays per step in [0, 1], ``v_th > 0``,
    ``beta`` (>= 0) a scalar or one value per neuron, ``n_ref`` refractory steps (int >= 0)."""

    shape: tuple[int, ...]
    alpha: float
    v_th: float
    beta: float | np.ndarray = 0.0
    rho: float = 1.0
    n_ref: int = 0
    input_delay: int = 0

    def __post_init__(self) -> None:
        self.shape = as_shape(self.shape, "EpropNeurons.shape")
        for name in ("alpha", "rho"):
            value = getattr(self, name)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"EpropNeurons: {name} must be a number, got {value!r}") from None
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"EpropNeurons: {name} (decay per step) must be in [0, 1], got {value}")
            setattr(self, name, value)
        try:
            self.v_th = float(self.v_th)
        except (TypeError, ValueError):
            raise ValueError(f"EpropNeurons: v_th must be a number, got {self.v_th!r}") from None
        if not (math.isfinite(self.v_th) and self.v_th > 0):
            raise ValueError(f"EpropNeurons: v_th must be finite and > 0, got {self.v_th}")
        beta = as_array(self.beta, "EpropNeurons.beta")
        n = math.prod(self.shape)
        if beta.ndim and beta.size != n:
            raise ValueError(f"EpropNeurons: beta must be a scalar or have {n} entries (shape {self.shape}), "
                             f"got {beta.size}")
        if np.any(beta < 0):
            raise ValueError(f"EpropNeurons: beta must be >= 0 (an adaptive threshold only rises), got min "
                             f"{float(beta.min())}")
        self.beta = float(beta) if beta.ndim == 0 else beta.reshape(-1)
        self.n_ref = as_steps(self.n_ref, "EpropNeurons: n_ref")
        self.input_delay = as_steps(self.input_delay, "EpropNeurons: input_delay")

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def beta_vector(self) -> np.ndarray:
        """``beta_j`` per neuron (flat, C order)."""
        return np.broadcast_to(np.asarray(self.beta, dtype=np.float64), (self.size,)).copy()

    def initial_state(self, batch: int, dtype=torch.float64, device=None) -> EpropState:
        return eprop_initial_state((batch, *self.shape), dtype, device)

    def step(self, x: torch.Tensor, state: EpropState | None) -> tuple[torch.Tensor, EpropState]:
        """``(z[t], state[t])`` for the summed input ``x[t]`` ``(B, *shape)``: one
        ``spikes.neurons.eprop.eprop_neuron_step`` (equations in the module docstring)."""
        if state is None:
            state = self.initial_state(x.shape[0], x.dtype, x.device)
        beta = torch.as_tensor(self.beta_vector(), dtype=x.dtype, device=x.device).reshape(self.shape)
        params = EpropParameters(alpha=self.alpha, rho=self.rho, v_th=self.v_th, beta=beta, n_ref=self.n_ref)
        z, _, state = eprop_neuron_step(x, state, params)
        return z, state
