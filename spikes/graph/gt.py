"""``GT`` and ``GTPotential``: a growth-transform (GT) population (``spikes.neurons.growth_transform``).

Per step, for the summed input ``x[n]`` (the external current; the coupling ``q`` stays inside the
population, as in the Lava process ``spikes.deploy.processes.gt``)::

    s[n]   = 1[v[n] > 0]
    g[n]   = x[n] - q v[n] - i_psi s[n]
    l[n]   = max(lam, (1 + 1e-3) |g[n]|)                       per neuron
    u      = vc (vc g[n] + l v[n]) / (v[n] g[n] + l vc)
    v[n+1] = a u + (1 - a) v[n]                                 v[0] = v0; |v| <= vc at every step

Two outputs per step, one per node type (a population node has one output):

- ``GT``: the spikes ``s[n]`` (``graded = False``), e.g. the last layer of a GT classifier, whose spikes
  are only counted;
- ``GTPotential``: the potential ``v[n]`` the spikes were read from (``graded = True``), for a population
  whose potential drives the next layer (a differential GT network's layer 1 feeds ``d = v+ - v-``
  through an ``Affine``). Its spikes are not lost: ``s[n] = 1[v[n] > 0]`` exactly, also in fixed point,
  where the spike is defined on the integer potential the backend returns.

Only the constant modulation (``a`` fixed, one value or one per neuron) is supported; the adaptive and
burst modulations of ``spikes.neurons.growth_transform.Modulation`` are refused by :meth:`GT.from_params`.
``step`` is ``gt_step`` itself (float64 through the graph's reference ``Graph.forward``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spikes.graph.node import PopulationNode, as_array, as_shape, as_steps
from spikes.neurons.growth_transform import GTParameters, Modulation, gt_initial_state, gt_step


@dataclass(eq=False)
class GT(PopulationNode):
    """``shape`` (one dimension, N neurons) GT neurons coupled by the symmetric ``q`` (N, N) (a scalar: ``q I``);
    ``lam`` > 0, ``vc`` > 0, ``i_psi`` >= 0, ``a`` in (0, 1] (scalar or per neuron), ``|v0| <= vc``."""

    shape: tuple[int, ...]
    q: float | np.ndarray = 1.0
    lam: float = 20.0
    vc: float = 1.0
    i_psi: float = 3.0
    a: float | np.ndarray = 0.5
    v0: float = -0.1
    input_delay: int = 0

    graded = False

    def __post_init__(self) -> None:
        what = type(self).__name__
        self.shape = as_shape(self.shape, f"{what}.shape")
        if len(self.shape) != 1:
            raise ValueError(f"{what}: shape must be one-dimensional (N,), got {self.shape}")
        n = self.shape[0]
        q = as_array(self.q, f"{what}.q")
        if q.ndim == 0:
            q = float(q) * np.eye(n)
        if q.shape != (n, n):
            raise ValueError(f"{what}: q must be a scalar or ({n}, {n}) for shape {self.shape}, got {q.shape}")
        if not np.allclose(q, q.T, rtol=0, atol=1e-9 * max(1.0, float(np.abs(q).max()))):
            raise ValueError(f"{what}: q must be symmetric (the Hessian of the GT energy)")
        self.q = 0.5 * (q + q.T)
        for name in ("lam", "vc", "i_psi", "v0"):
            setattr(self, name, float(getattr(self, name)))
        if not self.lam > 0 or not self.vc > 0:
            raise ValueError(f"{what}: lam and vc must be > 0, got lam={self.lam}, vc={self.vc}")
        if not self.i_psi >= 0:
            raise ValueError(f"{what}: i_psi must be >= 0, got {self.i_psi}")
        if not abs(self.v0) <= self.vc:
            raise ValueError(f"{what}: |v0| must be <= vc = {self.vc}, got v0={self.v0}")
        a = as_array(self.a, f"{what}.a")
        if a.ndim and a.size != n:
            raise ValueError(f"{what}: a must be a scalar or have {n} entries, got {a.size}")
        if not (a.min() > 0 and a.max() <= 1):
            raise ValueError(f"{what}: a (modulation) must be in (0, 1], got {a.min()}..{a.max()}")
        self.a = float(a) if a.ndim == 0 else a.reshape(-1)
        self.input_delay = as_steps(self.input_delay, f"{what}: input_delay")

    @classmethod
    def from_params(cls, params, n: int, v0: float = -0.1, name: str = "GT", **kw) -> "GT":
        """The node of a ``GTParameters`` population of ``n`` neurons; refuses non-constant modulations."""
        m = params.modulation
        if m.kind != "constant":
            raise ValueError(f"{name}: modulation {m.kind!r} cannot be deployed (only the constant modulation: "
                             "a fixed a per neuron)")
        q = params.q_matrix(n, torch.float64) if params.coupled else params.q
        a = m.a.detach().cpu().numpy() if isinstance(m.a, torch.Tensor) else m.a
        return cls((n,), q, params.lam, params.vc, params.i_psi, a, v0, **kw)

    def a_vector(self) -> np.ndarray:
        """The modulation per neuron."""
        return np.broadcast_to(np.asarray(self.a, dtype=np.float64), self.shape).copy()

    def parameters(self, dtype=torch.float64):
        """The equivalent ``GTParameters`` (constant modulation)."""
        a = self.a if isinstance(self.a, float) else torch.as_tensor(self.a, dtype=dtype)
        return GTParameters(q=torch.as_tensor(self.q, dtype=dtype), lam=self.lam, vc=self.vc, i_psi=self.i_psi,
                            modulation=Modulation("constant", a=a))

    def step(self, x: torch.Tensor, state):
        """``(s[n], state[n+1])`` for the input ``x[n]`` (B, N); ``state`` None: ``v = v0``."""
        if state is None:
            state = gt_initial_state(x.shape, v0=self.v0, dtype=x.dtype, device=x.device)
        return gt_step(x, state, self.parameters(x.dtype))


@dataclass(eq=False)
class GTPotential(GT):
    """A ``GT`` population whose output is its potential ``v[n]`` (graded); its spikes are ``v[n] > 0``."""

    graded = True

    def step(self, x: torch.Tensor, state):
        if state is None:
            state = gt_initial_state(x.shape, v0=self.v0, dtype=x.dtype, device=x.device)
        v = state.v
        _, state = super().step(x, state)
        return v, state
