"""The discrete-time integrate-and-fire family that every spiking neuron of spikes is a case of.

One step, for input current ``x[t]`` (the synapses' output at step t)::

    i[t]     = alpha_syn * i[t-1] + x[t]                     synaptic current (alpha_syn = 0: i = x)
    v[t]     = alpha * v[t-1] + i[t] + bias                  membrane (alpha = 1: IF), held while refractory
    theta[t] = v_th + beta * a[t-1]                          adaptive threshold (beta = 0: fixed)
    s[t]     = H(v[t] - theta[t])                            strict >, surrogate gradient backward
    v[t]     = v[t] - v_th * s[t]    (reset="subtract")    or  v[t] * (1 - s[t])   (reset="zero")
    a[t]     = rho * a[t-1] + s[t]                           adaptation variable
    r[t]     = refractory_steps if s[t] else max(r[t-1] - 1, 0)

IF, LIF, CuBa-LIF, ALIF and PLIF (``spikes.neurons``) are parameter choices of this one recurrence, which
is what makes the sequence kernels (``spikes.neurons.sequence``) and the exports (``spikes.deploy``)
shared by all of them.

Mapping onto Lava's LIF (``lava.proc.lif``; floating point: ``u = u*(1-du) + a_in;
v = v*(1-dv) + u + bias; s = v > vth; v[s] = 0``), exact when ``reset="zero"``, ``beta = 0`` and
the decays are multiples of 1/4096::

    du = 4096 * (1 - alpha_syn) - 1     (Lava's fixed point decays u by (4096 - (du + 1)) / 4096)
    dv = 4096 * (1 - alpha)
    vth = v_th,  bias_mant = bias       (floating point; fixed point scales all by 2**6 and the weights)

Mapping onto NIR's continuous-time nodes with step ``dt`` (forward Euler, ``v_leak = 0``)::

    LIF:      tau = dt / (1 - alpha),  r = tau / dt           (v += dt/tau * (-v + r*I))
    IF:       r = 1 / dt                                     (alpha = 1)
    CubaLIF:  tau_syn = dt / (1 - alpha_syn), w_in = tau_syn / dt, tau_mem, r as LIF
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch

from spikes.surrogates import Surrogate

RESETS = ("subtract", "zero")


@dataclass(frozen=True)
class NeuronParameters:
    """Parameters of the integrate-and-fire family (see the module docstring for the equations)."""

    alpha: float | torch.Tensor = 0.9
    alpha_syn: float = 0.0
    v_th: float = 1.0
    reset: str = "subtract"
    bias: float = 0.0
    beta: float = 0.0
    rho: float = 0.0
    refractory_steps: int = 0
    surrogate: Surrogate = field(default_factory=Surrogate)

    def __post_init__(self) -> None:
        alpha = self.alpha
        if isinstance(alpha, torch.Tensor):
            if alpha.numel() != 1:
                raise ValueError(f"alpha must be a scalar (one decay per population), got shape {tuple(alpha.shape)}")
        elif not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha (membrane decay per step) must be in [0, 1], got {alpha}")
        if not 0.0 <= self.alpha_syn < 1.0:
            raise ValueError(f"alpha_syn (current decay per step) must be in [0, 1), got {self.alpha_syn}")
        if not self.v_th > 0:
            raise ValueError(f"v_th must be > 0, got {self.v_th}")
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if self.beta < 0:
            raise ValueError(f"beta (threshold adaptation) must be >= 0, got {self.beta}")
        if not 0.0 <= self.rho <= 1.0:
            raise ValueError(f"rho (adaptation decay) must be in [0, 1], got {self.rho}")
        if int(self.refractory_steps) != self.refractory_steps or self.refractory_steps < 0:
            raise ValueError(f"refractory_steps must be a whole number >= 0, got {self.refractory_steps}")

    def with_(self, **changes) -> "NeuronParameters":
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def alpha_value(self) -> float:
        """The membrane decay as a Python float (for exports)."""
        return float(self.alpha.detach()) if isinstance(self.alpha, torch.Tensor) else float(self.alpha)

    @property
    def has_current(self) -> bool:
        return self.alpha_syn > 0

    @property
    def adaptive(self) -> bool:
        return self.beta > 0

    def lava_parameters(self) -> dict:
        """Lava LIF's floating-point ``du, dv, vth, bias_mant`` for these parameters.

        Raises ValueError for what Lava's LIF cannot express: subtractive reset, threshold adaptation.
        """
        if self.reset != "zero":
            raise ValueError("Lava's LIF resets to zero; reset='subtract' has no exact Lava equivalent")
        if self.adaptive:
            raise ValueError("Lava's LIF has a fixed threshold; beta > 0 (ALIF) has no exact Lava equivalent")
        return {"du": 1.0 - self.alpha_syn, "dv": 1.0 - self.alpha_value, "vth": self.v_th, "bias_mant": self.bias}

    def nir_parameters(self, dt: float = 1e-3) -> dict:
        """Continuous-time NIR parameters (forward Euler with step ``dt``), see the module docstring."""
        alpha = self.alpha_value
        out: dict = {"v_threshold": self.v_th, "v_leak": 0.0}
        if alpha >= 1.0:
            out["kind"] = "IF"
            out["r"] = 1.0 / dt
        else:
            tau = dt / (1.0 - alpha)
            out.update(kind="LIF", tau=tau, r=tau / dt)
        if self.has_current:
            tau_syn = dt / (1.0 - self.alpha_syn)
            out.update(kind="CubaLIF", tau_syn=tau_syn, w_in=tau_syn / dt)
            out["tau_mem"] = out.pop("tau", float("inf"))
        return out


@dataclass(frozen=True)
class PerNeuronParameters(NeuronParameters):
    """:class:`NeuronParameters` whose ``alpha``, ``v_th`` and ``bias`` may be tensors with one value per neuron
    (broadcast over the population's shape): a graph's float reference of populations imported with per-neuron
    time constants or thresholds (:class:`spikes.graph.Neurons` ``per_neuron``). The sequence kernels and Lava
    take one value per population; :func:`neuron_step` takes these."""

    def __post_init__(self) -> None:
        alpha, v_th = torch.as_tensor(self.alpha), torch.as_tensor(self.v_th)
        if not bool(((alpha >= 0) & (alpha <= 1)).all()):
            raise ValueError("alpha (membrane decay per step) must be in [0, 1] for every neuron")
        if not bool((v_th > 0).all()):
            raise ValueError("v_th must be > 0 for every neuron")
        NeuronParameters(alpha_syn=self.alpha_syn, reset=self.reset, beta=self.beta, rho=self.rho,
                         refractory_steps=self.refractory_steps)        # the population-wide fields' checks

    @property
    def alpha_value(self) -> float:
        raise ValueError("per-neuron parameters have no single alpha: read the per-neuron values")


class NeuronState(NamedTuple):
    """State of a population: membrane ``v``, current ``i``, adaptation ``a``, refractory counter ``r``."""

    v: torch.Tensor
    i: torch.Tensor
    a: torch.Tensor
    r: torch.Tensor


def initial_state(shape: tuple[int, ...] | torch.Size, dtype=torch.float32, device=None) -> NeuronState:
    """The resting state (all zeros) for a population of ``shape`` (batch included)."""
    zeros = torch.zeros(shape, dtype=dtype, device=device)
    return NeuronState(zeros, zeros, zeros, torch.zeros(shape, dtype=torch.int32, device=device))


def neuron_step(x: torch.Tensor, state: NeuronState | None, p: NeuronParameters) -> tuple[torch.Tensor, NeuronState]:
    """One step of the family: ``(x[t], state[t-1]) -> (s[t], state[t])``; equations in the module docstring."""
    if state is None:
        state = initial_state(x.shape, x.dtype, x.device)
    i = p.alpha_syn * state.i + x if p.has_current else x
    v = p.alpha * state.v + i
    if isinstance(p.bias, torch.Tensor) or p.bias:      # a tensor: one bias per neuron (PerNeuronParameters)
        v = v + p.bias
    refractory = None
    if p.refractory_steps:
        refractory = state.r > 0
        v = torch.where(refractory, state.v, v)
    theta = p.v_th + p.beta * state.a if p.adaptive else p.v_th
    s = p.surrogate(v - theta)
    if refractory is not None:
        s = s * (~refractory).to(s.dtype)
    v = v - p.v_th * s if p.reset == "subtract" else v * (1.0 - s)
    a = p.rho * state.a + s if p.adaptive else state.a
    if p.refractory_steps:
        r = torch.where(s.detach() > 0, torch.full_like(state.r, p.refractory_steps), (state.r - 1).clamp(min=0))
    else:
        r = state.r
    return s, NeuronState(v, i if p.has_current else state.i, a, r)
