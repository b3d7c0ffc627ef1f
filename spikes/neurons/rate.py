"""Rate neurons: a leaky rate unit (the E/I networks that learn with BTSP) and Beer's continuous-time recurrent
neuron (the CTRNN oscillators that learn by reward-modulated synaptic fluctuations).

Leaky rate unit (one Euler step of ``tau dv/dt = -v + x``, rate clipped to ``[0, r_max]``)::

    v[t] = v[t-1] + (x[t] - v[t-1]) / tau,        r[t] = clamp(v[t], 0, r_max)

CTRNN (Beer 1995; one Euler step of ``tau_i dy_i/dt = -y_i + sum_j W_ij sigma(y_j + theta_j) + I_i``)::

    o[t-1] = sigma(y[t-1] + theta)
    y[t]   = y[t-1] + dt / tau * (-y[t-1] + o[t-1] @ W^T + I[t]),      o[t] = sigma(y[t] + theta)

with ``sigma`` the logistic function and ``W[i, j]`` the weight from neuron ``j`` to neuron ``i``.

Leaky tanh RNN (the discrete-time rate network of neuroscience task studies, Sussillo & Barak 2013)::

    h[t] = (1 - alpha) h[t-1] + alpha tanh(W_rec h[t-1] + W_in x[t] + b)

whose fixed points under a constant input ``x`` are the solutions of ``h = tanh(W_rec h + W_in x + b)``. All three
are pure steps ``step(input, state, params) -> (output, state)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RateParameters:
    """Leaky rate unit: time constant ``tau`` in steps (>= 1; 1 = no memory) and the largest rate ``r_max``."""

    tau: float = 3.0
    r_max: float = 1.0

    def __post_init__(self) -> None:
        if self.tau < 1.0:
            raise ValueError(f"RateParameters.tau must be >= 1 step (Euler stability), got {self.tau}")
        if self.r_max <= 0:
            raise ValueError(f"RateParameters.r_max must be > 0, got {self.r_max}")


def rate_step(x: torch.Tensor, v: torch.Tensor | None, p: RateParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x[t], v[t-1]) -> (r[t], v[t])`` of the leaky rate unit (module docstring); ``v = None``: at rest."""
    if v is None:
        v = torch.zeros_like(x)
    v = v + (x - v) / p.tau
    return v.clamp(0.0, p.r_max), v


@dataclass(frozen=True)
class CTRNNParameters:
    """CTRNN step: weights ``W (N, N)`` (``W[i, j]``: from j to i), biases ``theta (N,)``, time constants
    ``tau (N,)`` and the Euler step ``dt`` (same time unit as ``tau``)."""

    weight: torch.Tensor
    bias: torch.Tensor
    tau: torch.Tensor
    dt: float = 0.1


def ctrnn_step(i: torch.Tensor, y: torch.Tensor, p: CTRNNParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """``(I[t] (..., N), y[t-1] (..., N)) -> (o[t], y[t])`` (module docstring). ``weight`` may carry leading batch
    dimensions ``(..., N, N)`` (one network per batch row, e.g. fluctuating weights)."""
    o = torch.sigmoid(y + p.bias)
    if p.weight.dim() == 2:
        drive = o @ p.weight.T
    else:
        drive = (p.weight @ o.unsqueeze(-1)).squeeze(-1)
    y = y + (p.dt / p.tau) * (-y + drive + i)
    return torch.sigmoid(y + p.bias), y


@dataclass(frozen=True)
class TanhRNNParameters:
    """Leaky tanh RNN step: input weights ``w_in (N, n_in)``, recurrent ``w_rec (N, N)`` (``[i, j]``: from j to i),
    bias ``b (N,)``, leak ``alpha = dt / tau`` in (0, 1]."""

    w_in: torch.Tensor
    w_rec: torch.Tensor
    b: torch.Tensor
    alpha: float = 0.2


def tanh_rnn_step(x: torch.Tensor, h: torch.Tensor, p: TanhRNNParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x[t] (..., n_in), h[t-1] (..., N)) -> (h[t], h[t])`` (module docstring: the output is the state)."""
    h = (1.0 - p.alpha) * h + p.alpha * torch.tanh(h @ p.w_rec.T + x @ p.w_in.T + p.b)
    return h, h
