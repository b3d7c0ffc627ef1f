"""Growth-transform (GT) spiking neurons (Gangopadhyay, Mehta, Chakrabartty, Front. Neurosci. 14:425, 2020).

A population of N neurons with bounded potentials ``|v_i| <= vc`` minimises the network energy

    H(v) = 1/2 v^T Q v - b^T v + sum_i Psi(v_i),      Psi'(v) = i_psi * 1[v > 0]

with the growth-transform (GT) fixed-point iteration. One step ``n -> n+1`` (``gt_step``)::

    s_i[n]   = 1[v_i[n] > 0]                                  spike = violation of the constraint v_i <= 0
    Psi_i[n] = i_psi * s_i[n]                                 spike penalty current
    g_i[n]   = b_i[n] - sum_j Q_ij v_j[n] - Psi_i[n]          minus the gradient of H
    l_i[n]   = max(lam, (1 + 1e-3) |g_i[n]|)                  GT needs lam > |g|; raised per neuron if not
    u_i      = vc * (vc g_i[n] + l_i v_i[n]) / (v_i[n] g_i[n] + l_i vc)
    v_i[n+1] = a_i[n] u_i + (1 - a_i[n]) v_i[n]               modulation: shapes transients, not the optimum

With ``x = v/vc`` and ``y = g/l`` in (-1, 1) the update is ``x' = (x + y) / (1 + x y)``, which maps
[-1, 1] into itself: ``|v| <= vc`` holds at every step. The time-averaged Psi_i is the Lagrange
multiplier of ``v_i <= 0``, so the spike count measures the energy spent on the constraint.

The modulation ``a_i[n]`` (``Modulation``), from the trace ``c[n] = decay * c[n-1] + kick * s[n]``:

- ``constant``: ``a = a`` (a = 0.5: tonic spiking for a constant input b > 0);
- ``adaptive``: between spikes ``a = (1 + depth * tanh(-gain * c[n])) / 2`` (spike-frequency adaptation;
  the paper's constants: depth 0.95, gain 0.2, decay 0.99, kick 2);
- ``burst``: a hysteresis gate ``G`` (off when ``c > c_high``, on again when ``c < c_low``); between
  spikes ``a = a`` while on and ``a = a_off`` while off: bursts of tonic spikes, then quiet phases.

In the adaptive and burst kinds the spiking step itself (``s[n] = 1``) always uses ``a`` and only the
recovery between spikes is modulated, so the spike shape is unchanged. This is our reading: the
downward (spike) and upward (recovery) excursions of ``v`` both scale with ``a``, so a modulation that
is constant over one inter-spike interval leaves the spike rate unchanged (checked numerically); it
must differ between the spike and the recovery to change the statistics.

Leaky integration is the subthreshold regime (``b`` below 0 between input pulses): ``v`` relaxes towards
the optimum ``Q^-1 b`` at a rate set by ``lam`` and ``a``.

Written from the equations (the authors' code is under a licence that forbids redistribution).
``spikes.deploy.processes.gt`` is the same population as a Lava process.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
from torch import nn

MODULATIONS = ("constant", "adaptive", "burst")
LAMBDA_MARGIN = 1e-3


@dataclass(frozen=True)
class Modulation:
    """How ``a_i[n]`` is set (equations in the module docstring)."""

    kind: str = "constant"
    a: float | torch.Tensor = 0.5
    depth: float = 0.95
    gain: float = 0.2
    decay: float = 0.99
    kick: float = 2.0
    a_off: float = 0.01
    c_high: float = 20.0
    c_low: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in MODULATIONS:
            raise ValueError(f"Modulation.kind must be one of {MODULATIONS}, got {self.kind!r}")
        a = self.a
        lo, hi = (float(a.min()), float(a.max())) if isinstance(a, torch.Tensor) else (a, a)
        if not (0.0 < lo and hi <= 1.0):
            raise ValueError(f"Modulation.a must be in (0, 1], got {a}")
        if not 0.0 <= self.a_off <= 1.0:
            raise ValueError(f"Modulation.a_off must be in [0, 1], got {self.a_off}")
        if not 0.0 <= self.depth < 1.0:
            raise ValueError(f"Modulation.depth must be in [0, 1) (a stays > 0), got {self.depth}")
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"Modulation.decay must be in [0, 1], got {self.decay}")
        if self.kind == "burst" and not self.c_low < self.c_high:
            raise ValueError(f"Modulation: c_low ({self.c_low}) must be below c_high ({self.c_high})")


@dataclass(frozen=True)
class GTParameters:
    """Parameters of a GT population.

    ``q`` is the coupling matrix Q ``(N, N)`` (symmetric) or a scalar ``q`` meaning ``Q = q * I``
    (independent neurons). ``lam`` is the GT step constant (larger: slower, smoother), ``vc`` the bound
    on ``|v|``, ``i_psi`` the spike penalty current.
    """

    q: float | torch.Tensor = 1.0
    lam: float = 20.0
    vc: float = 1.0
    i_psi: float = 3.0
    modulation: Modulation = field(default_factory=Modulation)

    def __post_init__(self) -> None:
        q = self.q
        if isinstance(q, torch.Tensor) and q.dim() > 0:
            if q.dim() != 2 or q.shape[0] != q.shape[1]:
                raise ValueError(f"GTParameters.q must be a scalar or a square (N, N) matrix, got shape {tuple(q.shape)}")
            if not torch.allclose(q, q.T, atol=1e-6):
                raise ValueError("GTParameters.q must be symmetric (it is the Hessian of the energy H)")
        if not self.lam > 0:
            raise ValueError(f"GTParameters.lam must be > 0, got {self.lam}")
        if not self.vc > 0:
            raise ValueError(f"GTParameters.vc must be > 0, got {self.vc}")
        if not self.i_psi >= 0:
            raise ValueError(f"GTParameters.i_psi must be >= 0, got {self.i_psi}")

    def with_(self, **changes) -> "GTParameters":
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def coupled(self) -> bool:
        return isinstance(self.q, torch.Tensor) and self.q.dim() == 2

    def q_matrix(self, n: int, dtype=torch.float64) -> torch.Tensor:
        """Q as an ``(n, n)`` matrix (for exports)."""
        if self.coupled:
            if self.q.shape[0] != n:
                raise ValueError(f"GTParameters.q is {tuple(self.q.shape)} but the population has {n} neurons")
            return self.q.to(dtype)
        return float(self.q) * torch.eye(n, dtype=dtype)


class GTState(NamedTuple):
    """State of a GT population: potential ``v``, modulation trace ``c``, burst gate ``gate`` (1 = on)."""

    v: torch.Tensor
    c: torch.Tensor
    gate: torch.Tensor


def gt_initial_state(shape: tuple[int, ...] | torch.Size, v0: float = -0.1, dtype=torch.float32, device=None) -> GTState:
    """Resting state: ``v = v0`` (the paper starts at -0.1), ``c = 0``, gate on."""
    zeros = torch.zeros(shape, dtype=dtype, device=device)
    return GTState(torch.full(shape, v0, dtype=dtype, device=device), zeros, torch.ones_like(zeros))


def _modulation(m: Modulation, state: GTState, s: torch.Tensor) -> tuple[torch.Tensor | float, torch.Tensor, torch.Tensor]:
    """``(a[n], c[n], gate[n])`` from the spikes ``s[n]`` and the previous trace and gate."""
    if m.kind == "constant":
        return m.a, state.c, state.gate
    c = m.decay * state.c + m.kick * s
    gate = state.gate
    if m.kind == "adaptive":
        rest = 0.5 * (1.0 + m.depth * torch.tanh(-m.gain * c))
    else:
        gate = torch.where(c > m.c_high, torch.zeros_like(c), torch.where(c < m.c_low, torch.ones_like(c), gate))
        rest = m.a_off + (m.a - m.a_off) * gate
    return s * m.a + (1.0 - s) * rest, c, gate


def gt_step(b: torch.Tensor, state: GTState | None, p: GTParameters) -> tuple[torch.Tensor, GTState]:
    """One GT step ``(b[n], state[n]) -> (s[n], state[n+1])``, equations in the module docstring.

    ``b`` has shape ``(B, N)`` (or ``(N,)``); the spikes ``s[n] = 1[v[n] > 0]`` are those of the
    potential the step starts from.
    """
    if state is None:
        state = gt_initial_state(b.shape, dtype=b.dtype, device=b.device)
    v = state.v
    s = (v > 0).to(v.dtype)
    qv = v @ p.q.T.to(v.dtype) if p.coupled else p.q * v
    g = b - qv - p.i_psi * s
    lam = torch.clamp((1.0 + LAMBDA_MARGIN) * g.abs(), min=p.lam)
    vc = p.vc
    u = vc * (vc * g + lam * v) / (v * g + lam * vc)
    a, c, gate = _modulation(p.modulation, state, s)
    v_next = a * u + (1.0 - a) * v
    return s, GTState(v_next, c, gate)


def run_gt(b: torch.Tensor, p: GTParameters, state: GTState | None = None, steps: int | None = None,
           v0: float = -0.1) -> tuple[torch.Tensor, torch.Tensor, GTState]:
    """Run ``gt_step`` over time: ``b`` is ``(T, B, N)``, or ``(B, N)`` held for ``steps`` steps.

    Returns ``(spikes, potentials, final_state)``, spikes and potentials ``(T, B, N)`` with
    ``potentials[n] = v[n]`` (the potential ``spikes[n]`` was read from).
    """
    if steps is None:
        if b.dim() < 2:
            raise ValueError(f"run_gt: b must be (T, B, N) or (B, N) with steps=..., got shape {tuple(b.shape)}")
        steps = b.shape[0]
        seq = b
    else:
        seq = None
    shape = b.shape[1:] if seq is not None else b.shape
    if state is None:
        state = gt_initial_state(shape, v0=v0, dtype=b.dtype, device=b.device)
    spikes, potentials = [], []
    for n in range(steps):
        potentials.append(state.v)
        s, state = gt_step(seq[n] if seq is not None else b, state, p)
        spikes.append(s)
    return torch.stack(spikes), torch.stack(potentials), state


class GTNeurons(nn.Module):
    """A GT population as an ``nn.Module``: ``forward(b)`` with ``b`` ``(T, B, N)`` returns spikes ``(T, B, N)``.

    The potentials of the last call are kept in ``self.potentials``; ``step(b_t, state)`` advances one step.
    """

    def __init__(self, params: GTParameters, v0: float = -0.1):
        super().__init__()
        self.params = params
        self.v0 = v0
        self.potentials: torch.Tensor | None = None

    def forward(self, b: torch.Tensor) -> torch.Tensor:
        spikes, self.potentials, _ = run_gt(b, self.params, v0=self.v0)
        return spikes

    def step(self, b: torch.Tensor, state: GTState | None = None) -> tuple[torch.Tensor, GTState]:
        if state is None:
            state = gt_initial_state(b.shape, v0=self.v0, dtype=b.dtype, device=b.device)
        return gt_step(b, state, self.params)

    def extra_repr(self) -> str:
        p = self.params
        return f"lam={p.lam}, vc={p.vc}, i_psi={p.i_psi}, modulation={p.modulation.kind}"
