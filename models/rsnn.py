"""Recurrent spiking network (LIF + ALIF) with a leaky readout, as in e-prop (Bellec et al. 2020).

Discrete time, step ``dt`` (ms); ``x[t]`` the input at step t, ``z[t]`` the spikes, for t = 1..T with
``v[0] = a[0] = z[0] = 0``::

    v_j[t] = alpha v_j[t-1] + sum_i Wrec_ji z_i[t-1] + sum_i Win_ji x_i[t] - v_th z_j[t-1]
    A_j[t] = v_th + beta_j a_j[t],        a_j[t] = rho a_j[t-1] + z_j[t-1]
    z_j[t] = H(v_j[t] - A_j[t])           0 while refractory (n_ref steps after a spike)
    y_k[t] = kappa y_k[t-1] + sum_j Wout_kj z_j[t] + b_k

``alpha = exp(-dt/tau_m)``, ``rho = exp(-dt/tau_a)``, ``kappa = exp(-dt/tau_out)``; ``beta_j = 0`` for the
LIF neurons, ``beta`` for the last ``n_adaptive`` (ALIF) ones; no self-connections (diag Wrec = 0).
The pseudo-derivative is e-prop's ``psi_j[t] = (gamma/v_th) max(0, 1 - |v_j[t] - A_j[t]| / v_th)``
(``Surrogate("triangle", gamma, width=v_th)``), 0 while refractory.

These are e-prop's equations, not ``spikes.neurons.dynamics``: here the reset ``- v_th z[t-1]`` enters
the *next* step undecayed and the membrane keeps integrating while refractory, whereas the core family
resets ``v[t]`` in the same step (so the reset is decayed by alpha) and holds v while refractory.

``stop_gradient=True`` detaches ``z[t-1]`` in the recurrent input and in the reset (not in the adaptation
``a``): autograd then yields exactly e-prop's gradient (``spikes.learning.eprop``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from spikes.surrogates import Surrogate


@dataclass(frozen=True)
class RSNNConfig:
    """Sizes and constants of an RSNN (times in ms; ``n_ref`` in steps)."""

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
        return Surrogate("triangle", self.gamma, width=self.v_th)

    def betas(self, dtype=torch.float32, device=None) -> torch.Tensor:
        """Per-neuron ``beta_j``: 0 for the first ``n_rec - n_adaptive`` (LIF), ``beta`` for the ALIF ones."""
        b = torch.zeros(self.n_rec, dtype=dtype, device=device)
        if self.n_adaptive:
            b[self.n_rec - self.n_adaptive:] = self.beta_value
        return b


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
    zeros = torch.zeros(batch, cfg.n_rec, dtype=dtype, device=device)
    return RSNNState(zeros, zeros, zeros, torch.zeros(batch, cfg.n_rec, dtype=torch.int32, device=device),
                     torch.zeros(batch, cfg.n_out, dtype=dtype, device=device))


def rsnn_step(x: torch.Tensor, state: RSNNState, w_in: torch.Tensor, w_rec: torch.Tensor, w_out: torch.Tensor,
              b_out: torch.Tensor, cfg: RSNNConfig, betas: torch.Tensor,
              stop_gradient: bool = False) -> tuple[RSNNStep, RSNNState]:
    """``(x[t], state[t-1]) -> (z[t], y[t], psi[t]), state[t]``; equations in the module docstring.

    ``w_rec`` must already have a zero diagonal (``RSNN.recurrent_weight()``).
    """
    z_prev = state.z.detach() if stop_gradient else state.z
    v = cfg.alpha * state.v + z_prev @ w_rec.t() + x @ w_in.t() - cfg.v_th * z_prev
    a = cfg.rho * state.a + state.z
    distance = v - (cfg.v_th + betas * a)
    sur = cfg.surrogate
    z = sur(distance)
    psi = sur.derivative(distance.detach())
    if cfg.n_ref:
        free = (state.r <= 0).to(z.dtype)
        z = z * free
        psi = psi * free
        r = torch.where(z.detach() > 0, torch.full_like(state.r, cfg.n_ref), (state.r - 1).clamp(min=0))
    else:
        r = state.r
    y = cfg.kappa * state.y + z @ w_out.t() + b_out
    return RSNNStep(z, y, psi), RSNNState(v, a, z, r, y)


class RSNN(nn.Module):
    """LIF/ALIF recurrent network with leaky readout; ``forward(x (T, B, n_in)) -> (y (T, B, K), z (T, B, N))``.

    Weights: ``w_in`` (N, n_in) ~ N(0, 1/n_in), ``w_rec`` (N, N) ~ N(0, 1/N) with zero diagonal,
    ``w_out`` (K, N) ~ N(0, 1/N), ``b_out`` (K,) = 0; drawn from ``seed``.
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

    def initial_state(self, batch: int) -> RSNNState:
        return initial_state(self.cfg, batch, self.w_in.dtype, self.w_in.device)

    def step(self, x: torch.Tensor, state: RSNNState, stop_gradient: bool = False) -> tuple[RSNNStep, RSNNState]:
        return rsnn_step(x, state, self.w_in, self.recurrent_weight(), self.w_out, self.b_out, self.cfg,
                         self.betas, stop_gradient)

    def to_graph(self, input_shape: tuple[int, ...]):
        """The deploy graph (``spikes.graph.capture`` protocol): ``input -> w_in (Affine) -> rec
        (EpropNeurons, with the recurrent Affine w_rec, zero diagonal) -> w_out (Affine, b_out) -> readout
        (Integrator, alpha = kappa) -> output``. ``Graph.forward`` reproduces :meth:`forward` (spikes of
        ``rec``, readout values of ``readout``)."""
        from spikes.graph import Affine, EpropNeurons, Graph, Input, Integrator, Output

        cfg = self.cfg
        if tuple(input_shape) != (cfg.n_in,):
            raise ValueError(f"RSNN.to_graph: the per-sample input must be ({cfg.n_in},) (n_in), got "
                             f"{tuple(input_shape)}")
        rec = EpropNeurons((cfg.n_rec,), alpha=cfg.alpha, v_th=cfg.v_th, beta=self.betas.detach().double().cpu(),
                           rho=cfg.rho, n_ref=cfg.n_ref)
        nodes = {"input": Input((cfg.n_in,)), "w_in": Affine(self.w_in), "rec": rec,
                 "w_rec": Affine(self.recurrent_weight()), "w_out": Affine(self.w_out, self.b_out),
                 "readout": Integrator((cfg.n_out,), alpha=cfg.kappa), "output": Output((cfg.n_out,))}
        edges = [("input", "w_in"), ("w_in", "rec"), ("rec", "w_rec"), ("w_rec", "rec"), ("rec", "w_out"),
                 ("w_out", "readout"), ("readout", "output")]
        return Graph(nodes, edges)

    def forward(self, x: torch.Tensor, state: RSNNState | None = None,
                stop_gradient: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.cfg.n_in:
            raise ValueError(f"RSNN input must be (T, B, n_in={self.cfg.n_in}), got {tuple(x.shape)}")
        state = self.initial_state(x.shape[1]) if state is None else state
        w_rec = self.recurrent_weight()
        ys, zs = [], []
        for t in range(x.shape[0]):
            out, state = rsnn_step(x[t], state, self.w_in, w_rec, self.w_out, self.b_out, self.cfg, self.betas,
                                   stop_gradient)
            ys.append(out.y)
            zs.append(out.z)
        return torch.stack(ys), torch.stack(zs)
