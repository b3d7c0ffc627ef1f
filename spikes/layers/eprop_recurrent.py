"""``EpropRecurrent``: e-prop's recurrent LIF/ALIF population with its input, recurrent and leaky-readout
weights (Bellec et al. 2020), the layer that ``spikes.learning.eprop`` trains.

Discrete time, step ``dt`` (ms); ``x[t]`` the input at step t, ``z[t]`` the spikes, for t = 1..T with
``v[0] = a[0] = z[0] = 0``::

    v_j[t] = alpha v_j[t-1] + sum_i Wrec_ji z_i[t-1] + sum_i Win_ji x_i[t] - v_th z_j[t-1]
    A_j[t] = v_th + beta_j a_j[t],        a_j[t] = rho a_j[t-1] + z_j[t-1]
    z_j[t] = H(v_j[t] - A_j[t])           0 while refractory (n_ref steps after a spike)
    y_k[t] = kappa y_k[t-1] + sum_j Wout_kj z_j[t] + b_k

The neuron lines are ``spikes.neurons.eprop.eprop_neuron_step`` (with its pseudo-derivative ``psi``), fed
the current ``(Wrec z[t-1], Win x[t])``; this layer adds the weights and the readout ``y``.
``alpha = exp(-dt/tau_m)``, ``rho = exp(-dt/tau_a)``, ``kappa = exp(-dt/tau_out)``; ``beta_j = 0`` for the
LIF neurons, ``beta`` for the last ``n_adaptive`` (ALIF) ones; no self-connections (diag Wrec = 0).
The pseudo-derivative is ``psi_j[t] = (gamma/v_th) max(0, 1 - |v_j[t] - A_j[t]| / v_th)``, 0 while
refractory.

``stop_gradient=True`` detaches ``z[t-1]`` in the recurrent input and in the reset (not in the adaptation
``a``): autograd then yields exactly e-prop's gradient (``spikes.learning.eprop``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from spikes.neurons.eprop import EpropParameters, EpropState, eprop_neuron_step
from spikes.surrogates import Surrogate


@dataclass(frozen=True)
class RSNNConfig:
    """Sizes and constants of an e-prop recurrent network (times in ms; ``n_ref`` in steps)."""

    n_in: int
    n_rec: int
    n_out: int
    n_adaptive: int = 0
    dt: float = 1.0
    tau_m: float = 20.0
    tau_a: float = 2000.0
    tau_out: float = 20.0
    v_th: float = 0.6
    n_ref: int = 5
    beta: float | None = None
    gamma: float = 0.3

    def __post_init__(self) -> None:
        for name in ("n_in", "n_rec", "n_out"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"RSNNConfig.{name} must be a whole number >= 1, got {getattr(self, name)}")
        if not 0 <= self.n_adaptive <= self.n_rec:
            raise ValueError(f"RSNNConfig.n_adaptive must be in [0, n_rec={self.n_rec}], got {self.n_adaptive}")
        for name in ("dt", "tau_m", "tau_a", "tau_out", "v_th", "gamma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RSNNConfig.{name} must be > 0, got {getattr(self, name)}")
        if int(self.n_ref) != self.n_ref or self.n_ref < 0:
            raise ValueError(f"RSNNConfig.n_ref must be a whole number of steps >= 0, got {self.n_ref}")
        if self.beta is not None and self.beta < 0:
            raise ValueError(f"RSNNConfig.beta must be >= 0, got {self.beta}")

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt / self.tau_m)

    @property
    def rho(self) -> float:
        return math.exp(-self.dt / self.tau_a)

    @property
    def kappa(self) -> float:
        return math.exp(-self.dt / self.tau_out)

    @property
    def beta_value(self) -> float:
        """``beta``, by default 1.7 (1 - rho) / (1 - alpha): the LSNN threshold jump in these units."""
        if self.beta is not None:
            return float(self.beta)
        return 1.7 * (1.0 - self.rho) / (1.0 - self.alpha)

    @property
    def surrogate(self) -> Surrogate:
        """The neurons' pseudo-derivative (``EpropParameters.surrogate``: triangle, height gamma / v_th)."""
        return self.neuron_parameters(0.0).surrogate

    def betas(self, dtype=torch.float32, device=None) -> torch.Tensor:
        """Per-neuron ``beta_j``: 0 for the first ``n_rec - n_adaptive`` (LIF), ``beta`` for the ALIF ones."""
        b = torch.zeros(self.n_rec, dtype=dtype, device=device)
        if self.n_adaptive:
            b[self.n_rec - self.n_adaptive:] = self.beta_value
        return b

    def neuron_parameters(self, betas: torch.Tensor | float) -> EpropParameters:
        """The neurons' step constants, with the per-neuron ``betas`` (``betas()``, or a layer's buffer)."""
        return EpropParameters(alpha=self.alpha, rho=self.rho, v_th=self.v_th, beta=betas, n_ref=int(self.n_ref),
                               gamma=self.gamma)


class RSNNState(NamedTuple):
    """``v, a, z`` at step t (B, N), refractory counter ``r`` (B, N) int, readout ``y`` (B, K)."""

    v: torch.Tensor
    a: torch.Tensor
    z: torch.Tensor
    r: torch.Tensor
    y: torch.Tensor


class RSNNStep(NamedTuple):
    """One step's outputs: spikes ``z``, readout ``y``, pseudo-derivative ``psi`` (all (B, ...))."""

    z: torch.Tensor
    y: torch.Tensor
    psi: torch.Tensor


def initial_state(cfg: RSNNConfig, batch: int, dtype=torch.float32, device=None) -> RSNNState:
    """The network at rest: neurons and readout all zero."""
    zeros = torch.zeros(batch, cfg.n_rec, dtype=dtype, device=device)
    return RSNNState(zeros, zeros, zeros, torch.zeros(batch, cfg.n_rec, dtype=torch.int32, device=device),
                     torch.zeros(batch, cfg.n_out, dtype=dtype, device=device))


def rsnn_step(x: torch.Tensor, state: RSNNState, w_in: torch.Tensor, w_rec: torch.Tensor, w_out: torch.Tensor,
              b_out: torch.Tensor, cfg: RSNNConfig, betas: torch.Tensor,
              stop_gradient: bool = False) -> tuple[RSNNStep, RSNNState]:
    """``(x[t], state[t-1]) -> (z[t], y[t], psi[t]), state[t]``; equations in the module docstring.

    ``w_rec`` must already have a zero diagonal (``EpropRecurrent.recurrent_weight()``).
    """
    return _step(x, state, w_in, w_rec, w_out, b_out, cfg.kappa, cfg.neuron_parameters(betas), stop_gradient)


def _step(x: torch.Tensor, state: RSNNState, w_in: torch.Tensor, w_rec: torch.Tensor, w_out: torch.Tensor,
          b_out: torch.Tensor, kappa: float, params: EpropParameters,
          stop_gradient: bool) -> tuple[RSNNStep, RSNNState]:
    """:func:`rsnn_step` with the neuron parameters and readout decay already made (once per sequence)."""
    z_prev = state.z.detach() if stop_gradient else state.z
    z, psi, neurons = eprop_neuron_step((z_prev @ w_rec.t(), x @ w_in.t()),
                                        EpropState(state.v, state.a, state.z, state.r), params,
                                        stop_gradient=stop_gradient)
    y = kappa * state.y + z @ w_out.t() + b_out
    return RSNNStep(z, y, psi), RSNNState(neurons.v, neurons.a, neurons.z, neurons.r, y)


class EpropRecurrent(nn.Module):
    """LIF/ALIF recurrent population with leaky readout; ``forward(x (T, B, n_in)) -> (y (T, B, K), z (T, B, N))``.

    Weights: ``w_in`` (N, n_in) ~ N(0, 1/n_in), ``w_rec`` (N, N) ~ N(0, 1/N) with zero diagonal,
    ``w_out`` (K, N) ~ N(0, 1/N), ``b_out`` (K,) = 0; drawn in that order, in float64, from ``seed``, then
    cast to ``dtype``. Buffers: ``betas`` (N,) and the mask ``no_self = 1 - I``.
    """

    def __init__(self, cfg: RSNNConfig, seed: int = 0, dtype=torch.float32):
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(seed)
        n, m, k = cfg.n_rec, cfg.n_in, cfg.n_out
        self.w_in = nn.Parameter((torch.randn(n, m, generator=g, dtype=torch.float64) / math.sqrt(m)).to(dtype))
        w_rec = torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)
        w_rec.fill_diagonal_(0.0)
        self.w_rec = nn.Parameter(w_rec.to(dtype))
        self.w_out = nn.Parameter((torch.randn(k, n, generator=g, dtype=torch.float64) / math.sqrt(n)).to(dtype))
        self.b_out = nn.Parameter(torch.zeros(k, dtype=dtype))
        self.register_buffer("betas", cfg.betas(dtype))
        self.register_buffer("no_self", 1.0 - torch.eye(n, dtype=dtype))

    def recurrent_weight(self) -> torch.Tensor:
        """``w_rec`` with its diagonal forced to 0 (no self-connections)."""
        return self.w_rec * self.no_self

    @torch.no_grad()
    def constrain_(self) -> None:
        """Re-zero ``w_rec``'s stored diagonal in place after an update (``spikes.learning.rule.constrain``).

        The forward pass masks it (``recurrent_weight``), so it gets no gradient; this keeps the parameter itself
        at ``diag = 0`` whatever wrote to it (an optimizer's update, loaded weights), as e-prop's ``apply`` does."""
        self.w_rec.mul_(self.no_self)

    def initial_state(self, batch: int) -> RSNNState:
        return initial_state(self.cfg, batch, self.w_in.dtype, self.w_in.device)

    def step(self, x: torch.Tensor, state: RSNNState, stop_gradient: bool = False) -> tuple[RSNNStep, RSNNState]:
        """One step, ``x (B, n_in)``; see :func:`rsnn_step`."""
        return rsnn_step(x, state, self.w_in, self.recurrent_weight(), self.w_out, self.b_out, self.cfg,
                         self.betas, stop_gradient)

    def spike_output(self, output: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The spikes ``z (T, B, N)`` of ``forward``'s ``(y, z)`` (for ``spikes.metrics.SpikeProbe``)."""
        return output[1]

    def forward(self, x: torch.Tensor, state: RSNNState | None = None,
                stop_gradient: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.cfg.n_in:
            raise ValueError(f"{type(self).__name__} input must be (T, B, n_in={self.cfg.n_in}), got "
                             f"{tuple(x.shape)}")
        state = self.initial_state(x.shape[1]) if state is None else state
        w_rec = self.recurrent_weight()
        params, kappa = self.cfg.neuron_parameters(self.betas), self.cfg.kappa
        ys, zs = [], []
        for t in range(x.shape[0]):
            out, state = _step(x[t], state, self.w_in, w_rec, self.w_out, self.b_out, kappa, params, stop_gradient)
            ys.append(out.y)
            zs.append(out.z)
        return torch.stack(ys), torch.stack(zs)
