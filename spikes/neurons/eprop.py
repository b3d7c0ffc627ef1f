"""e-prop's LIF/ALIF neuron (Bellec et al., Nat. Commun. 11:3625, 2020): one step, written once.

Discrete time; ``I_j[t]`` the input current of step t (the synapses' output: in a recurrent network
``sum_i Win_ji x_i[t] + sum_i Wrec_ji z_i[t-1]``); ``v[0] = a[0] = z[0] = 0``, ``r[0] = 0``::

    v_j[t]   = alpha v_j[t-1] + I_j[t] - v_th z_j[t-1]      the reset enters the next step, undecayed
    a_j[t]   = rho a_j[t-1] + z_j[t-1]                      threshold adaptation
    A_j[t]   = v_th + beta_j a_j[t]                         adaptive threshold (beta_j = 0: LIF)
    z_j[t]   = H(v_j[t] - A_j[t])   if r_j[t-1] == 0, else 0       (H(x) = 1 if x > 0)
    psi_j[t] = (gamma / v_th) max(0, 1 - |v_j[t] - A_j[t]| / v_th)   if r_j[t-1] == 0, else 0
    r_j[t]   = n_ref if z_j[t] else max(r_j[t-1] - 1, 0)            refractory steps left

``alpha = exp(-dt/tau_m)``, ``rho = exp(-dt/tau_a)``; ``psi`` is e-prop's pseudo-derivative, the backward
pass of ``z`` (``Surrogate("triangle", gamma, width=v_th)``). The membrane keeps integrating while
refractory. These are e-prop's equations, not ``spikes.neurons.dynamics``: there the reset is applied to
``v[t]`` in the same step (so it is decayed by alpha at the next one) and v is held while refractory.

``stop_gradient=True`` detaches ``z[t-1]`` in the reset (not in the adaptation ``a``): with the recurrent
input's ``z[t-1]`` detached too (the layer's business, ``spikes.layers.eprop_recurrent``), autograd through
the steps is exactly e-prop's gradient (``spikes.learning.eprop``).

The input current may be given as several tensors (``(recurrent, feed-forward)``): they are added to the
decayed membrane one by one, in the given order, so a caller fixes its floating-point rounding.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from spikes.surrogates import Surrogate


@dataclass(frozen=True)
class EpropParameters:
    """Per-step constants of an e-prop population: decays ``alpha`` (membrane) and ``rho`` (adaptation) in
    [0, 1], threshold ``v_th > 0``, adaptation strength ``beta >= 0`` (a scalar, or a tensor with one value per
    neuron, broadcast against the state), ``n_ref`` refractory steps (whole number >= 0), pseudo-derivative
    height ``gamma > 0``."""

    alpha: float
    rho: float
    v_th: float
    beta: float | torch.Tensor = 0.0
    n_ref: int = 0
    gamma: float = 0.3

    def __post_init__(self) -> None:
        for name in ("alpha", "rho"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"EpropParameters.{name} (decay per step) must be in [0, 1], got {value}")
        if not (math.isfinite(self.v_th) and self.v_th > 0):
            raise ValueError(f"EpropParameters.v_th must be finite and > 0, got {self.v_th}")
        if not self.gamma > 0:
            raise ValueError(f"EpropParameters.gamma must be > 0, got {self.gamma}")
        if isinstance(self.n_ref, bool) or int(self.n_ref) != self.n_ref or self.n_ref < 0:
            raise ValueError(f"EpropParameters.n_ref must be a whole number of steps >= 0, got {self.n_ref!r}")
        beta = self.beta
        if isinstance(beta, torch.Tensor):
            if not beta.is_floating_point():
                raise ValueError(f"EpropParameters.beta must be a float tensor, got {beta.dtype}")
            if beta.numel() and bool((beta < 0).any()):
                raise ValueError(f"EpropParameters.beta must be >= 0 (an adaptive threshold only rises), got min "
                                 f"{float(beta.min())}")
        elif not beta >= 0:
            raise ValueError(f"EpropParameters.beta must be >= 0 (an adaptive threshold only rises), got {beta}")

    @property
    def surrogate(self) -> Surrogate:
        """e-prop's pseudo-derivative: the triangle of height ``gamma / v_th`` and half-width ``v_th``."""
        return Surrogate("triangle", self.gamma, width=self.v_th)


class EpropState(NamedTuple):
    """``v, a, z`` (float) and the refractory counter ``r`` (int32), each of the population's shape (batch
    first)."""

    v: torch.Tensor
    a: torch.Tensor
    z: torch.Tensor
    r: torch.Tensor


def eprop_initial_state(shape: tuple[int, ...] | torch.Size, dtype=torch.float32, device=None) -> EpropState:
    """The resting state (all zeros) of a population of ``shape`` (batch included)."""
    zeros = torch.zeros(shape, dtype=dtype, device=device)
    return EpropState(zeros, zeros, zeros, torch.zeros(shape, dtype=torch.int32, device=device))


def eprop_neuron_step(input_current: torch.Tensor | Sequence[torch.Tensor], state: EpropState | None,
                      params: EpropParameters, stop_gradient: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor, EpropState]:
    """``(I[t], state[t-1]) -> (z[t], psi[t], state[t])``; equations in the module docstring.

    ``input_current`` is ``I[t]`` (batch first), or several tensors summed onto the decayed membrane in
    order; ``state=None`` starts at rest. ``z`` carries the pseudo-derivative as its autograd gradient,
    ``psi`` is that pseudo-derivative's value (detached).
    """
    currents = (input_current,) if isinstance(input_current, torch.Tensor) else tuple(input_current)
    if not currents:
        raise ValueError("eprop_neuron_step: input_current is an empty sequence (give at least one tensor)")
    if state is None:
        state = eprop_initial_state(currents[0].shape, currents[0].dtype, currents[0].device)
    z_prev = state.z.detach() if stop_gradient else state.z
    v = params.alpha * state.v
    for current in currents:
        v = v + current
    v = v - params.v_th * z_prev
    a = params.rho * state.a + state.z
    distance = v - (params.v_th + params.beta * a)
    sur = params.surrogate
    z = sur(distance)
    psi = sur.derivative(distance.detach())
    if params.n_ref:
        free = (state.r <= 0).to(z.dtype)
        z = z * free
        psi = psi * free
        r = torch.where(z.detach() > 0, torch.full_like(state.r, params.n_ref), (state.r - 1).clamp(min=0))
    else:
        r = state.r
    return z, psi, EpropState(v, a, z, r)
