"""Spike-and-slab synapses (Zou, Li & Huang, Phys. Rev. E 107, 024307, 2023): every weight is a distribution,

    w = 0 with probability pi,   else   w ~ N(m, xi),

so a layer is an ensemble of networks. Its moments per weight are

    E[w]   = mu  = (1 - pi) m
    E[w^2] = rho = (1 - pi) (xi + m^2)
    Var[w] = rho - mu^2 = (1 - pi) xi + pi (1 - pi) m^2 .

Mean-field forward (local reparameterisation): with independent weights, the pre-activation ``u_j = sum_i w_ji x_i``
of an input ``x`` is, by the central limit theorem, Gaussian with

    E[u_j]   = sum_i mu_ji x_i
    Var[u_j] = sum_i (rho_ji - mu_ji^2) x_i^2 ,

and is drawn as ``u = E[u] + sqrt(Var[u]) eps``, ``eps ~ N(0, 1)`` per sample and unit, so autograd carries the
gradient to ``m``, ``pi`` and ``xi``. ``pi = sigmoid(pi_logit)`` stays in [0, 1] and ``xi = softplus(xi_raw) + 1e-10``
stays > 0 whatever the optimiser does (the parameters are unconstrained). The bias is a plain deterministic
parameter.

Modes (:attr:`SpikeSlabLinear.mode`):

- ``"mean_field"``: the Gaussian pre-activation above; in eval mode the noise is off (``u = E[u]``) unless
  ``eval_noise`` is set;
- ``"sampled"``: one concrete network drawn from the ensemble by :meth:`SpikeSlabLinear.resample` (weights fixed
  until the next draw): ``u = W x`` with ``W_ji = 0`` w.p. ``pi_ji``, else ``N(m_ji, xi_ji)``.

Pruning: :meth:`SpikeSlabLinear.prune` fixes the connections with ``pi >= threshold`` at zero (a buffer mask, so
they stay pruned in every mode).

:class:`SpikeSlabRecurrent` is a recurrent cell in the norse style: a pure step function
``spike_slab_step(x, state, params) -> (output, state)`` and a thin module that runs it over a sequence. The current
``u_t = W_in x_t + W_rec r_{t-1} + b`` (its mean and variance the sums of both layers', the layers being
independent) drives either a leaky rate unit, ``h_t = h_{t-1} + (u_t - h_{t-1}) / tau_m``, ``r_t = relu(h_t)``
(the paper's network), or a LIF neuron of :func:`spikes.neurons.neuron_step`, ``r_t = s_t`` its spikes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from spikes.neurons.dynamics import NeuronParameters, NeuronState, initial_state, neuron_step

MODES = ("mean_field", "sampled")
NEURONS = ("rate", "lif")
VARIANCE_FLOOR = 1e-8       # under the square root of Var[u]: its gradient stays finite when an input is all zero
XI_FLOOR = 1e-10            # added to softplus, which underflows to 0 in float32 below about -104


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """``x`` with ``softplus(x) = y`` (y > 0)."""
    return y + torch.log(-torch.expm1(-y))


class SpikeSlabLinear(nn.Module):
    """``x (..., in) -> u (..., out)``, a spike-and-slab weight matrix (module docstring).

    Initial values: ``m ~ N(0, m_std^2)`` (default ``1 / in_features``); ``pi = pi_init``; ``xi ~ U(xi_low,
    xi_high) / in_features`` (the paper: ``pi = 0`` and ``xi ~ U[0, 0.1]`` unscaled; a sigmoid needs ``pi_init > 0``,
    and without the ``1 / in_features`` the variance of ``u`` grows with the fan-in: 64 recurrent units at
    ``xi ~ 0.05`` give ``u`` a noise of 1.8 times the activity, and an identity-initialised network explodes)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, m_std: float | None = None,
                 pi_init: float = 0.02, xi_range: tuple[float, float] = (0.0, 0.1), eval_noise: bool = False):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"SpikeSlabLinear needs in_features and out_features >= 1, got {in_features}, "
                             f"{out_features}")
        if not 0.0 < pi_init < 1.0:
            raise ValueError(f"SpikeSlabLinear: pi_init must be in (0, 1) (pi = sigmoid(pi_logit)), got {pi_init}")
        low, high = xi_range
        if not 0.0 <= low <= high:
            raise ValueError(f"SpikeSlabLinear: xi_range must be 0 <= low <= high, got {xi_range}")
        self.in_features, self.out_features = in_features, out_features
        std = m_std if m_std is not None else 1.0 / math.sqrt(in_features)
        self.m = nn.Parameter(torch.randn(out_features, in_features) * std)
        self.pi_logit = nn.Parameter(torch.full((out_features, in_features), math.log(pi_init / (1 - pi_init))))
        xi = (low + (high - low) * torch.rand(out_features, in_features)) / in_features
        self.xi_raw = nn.Parameter(inverse_softplus(xi.clamp(min=1e-6)))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("keep", torch.ones(out_features, in_features))     # 0: pruned
        self.register_buffer("sampled_weight", torch.zeros(out_features, in_features))
        self.mode = "mean_field"
        self.eval_noise = eval_noise

    # ---------------------------------------------------------------------------------------- the distribution
    @property
    def pi(self) -> torch.Tensor:
        """Probability that a weight is zero, in (0, 1) (1 where pruned)."""
        return 1.0 - self.keep * (1.0 - torch.sigmoid(self.pi_logit))

    @property
    def xi(self) -> torch.Tensor:
        """Variance of the slab, > 0 (``softplus(xi_raw) + XI_FLOOR``)."""
        return F.softplus(self.xi_raw) + XI_FLOOR

    def weight_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, var)`` per weight: ``mu = (1 - pi) m``, ``var = (1 - pi) xi + pi (1 - pi) m^2``."""
        pi, m = self.pi, self.m
        return (1 - pi) * m, (1 - pi) * self.xi + pi * (1 - pi) * m * m

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of ``u = W x (+ b)`` over the ensemble: ``(x mu^T + b, x^2 var^T)``."""
        mu, var = self.weight_moments()
        mean = x @ mu.T
        if self.bias is not None:
            mean = mean + self.bias
        return mean, (x * x) @ var.T

    def sample_weights(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One concrete weight matrix: 0 with probability ``pi``, else ``N(m, xi)`` (pruned entries 0)."""
        with torch.no_grad():
            slab = self.m + self.xi.sqrt() * torch.randn(self.m.shape, generator=generator, dtype=self.m.dtype)
            zero = torch.rand(self.m.shape, generator=generator, dtype=self.m.dtype) < self.pi
            return torch.where(zero, torch.zeros_like(slab), slab)

    # ------------------------------------------------------------------------------------------------ modes
    def resample(self, generator: torch.Generator | None = None) -> None:
        """Draw one network from the ensemble and switch to ``"sampled"`` mode."""
        self.sampled_weight.copy_(self.sample_weights(generator))
        self.mode = "sampled"

    def mean_field(self) -> None:
        self.mode = "mean_field"

    def prune(self, threshold: float = 0.9) -> int:
        """Fix the connections with ``pi >= threshold`` at zero; returns how many are pruned now."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"prune: threshold must be in (0, 1], got {threshold}")
        with torch.no_grad():
            self.keep.mul_((torch.sigmoid(self.pi_logit) < threshold).to(self.keep.dtype))
        return int((self.keep == 0).sum())

    def prunable(self, threshold: float = 0.9) -> torch.Tensor:
        """Boolean mask of the connections with ``pi >= threshold``."""
        return self.pi.detach() >= threshold

    def noisy(self) -> bool:
        return self.training or self.eval_noise

    def forward_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mean, variance)`` of the pre-activation in the current mode (variance ``None``: deterministic)."""
        if self.mode == "sampled":
            u = x @ self.sampled_weight.T
            return (u + self.bias if self.bias is not None else u), None
        mean, var = self.moments(x)
        return mean, (var if self.noisy() else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_sample(*self.forward_moments(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, mode={self.mode}"


def gaussian_sample(mean: torch.Tensor, var: torch.Tensor | None) -> torch.Tensor:
    """``mean + sqrt(var) eps`` with ``eps ~ N(0, 1)`` (``mean`` itself when ``var`` is None)."""
    if var is None:
        return mean
    return mean + (var + VARIANCE_FLOOR).sqrt() * torch.randn_like(mean)


def set_mode(module: nn.Module, mode: str, generator: torch.Generator | None = None) -> None:
    """Every :class:`SpikeSlabLinear` of ``module`` to ``mode`` ("sampled": each draws one concrete network)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    for layer in module.modules():
        if isinstance(layer, SpikeSlabLinear):
            layer.resample(generator) if mode == "sampled" else layer.mean_field()


def spike_slab_layers(module: nn.Module) -> dict[str, SpikeSlabLinear]:
    """``{name: layer}`` of the spike-and-slab layers of ``module``."""
    return {name: m for name, m in module.named_modules() if isinstance(m, SpikeSlabLinear)}


# ------------------------------------------------------------------------------------------ the recurrent cell
class SpikeSlabState(NamedTuple):
    """State of the recurrent cell: the rate unit's ``h`` or the LIF neuron's state, and the last output ``r``."""

    h: torch.Tensor | NeuronState
    r: torch.Tensor


@dataclass(frozen=True)
class SpikeSlabCellParameters:
    """``neuron``: "rate" (``h += (u - h) / tau_m``, ``r = relu(h)``) or "lif" (``lif``'s neuron step)."""

    neuron: str = "rate"
    tau_m: float = 1.0
    lif: NeuronParameters | None = None

    def __post_init__(self) -> None:
        if self.neuron not in NEURONS:
            raise ValueError(f"neuron must be one of {NEURONS}, got {self.neuron!r}")
        if not self.tau_m >= 1.0:
            raise ValueError(f"tau_m (in steps) must be >= 1, got {self.tau_m}")
        if self.neuron == "lif" and self.lif is None:
            raise ValueError("neuron 'lif' needs its NeuronParameters (lif=...)")


def spike_slab_step(x: torch.Tensor, state: SpikeSlabState, input_layer: SpikeSlabLinear,
                    recurrent_layer: SpikeSlabLinear, p: SpikeSlabCellParameters
                    ) -> tuple[torch.Tensor, SpikeSlabState]:
    """One step: ``u = W_in x + W_rec r_{t-1}`` drawn from its mean-field Gaussian (or the sampled networks'),
    then the neuron (module docstring). Returns ``(r_t, state)``."""
    mean_in, var_in = input_layer.forward_moments(x)
    mean_rec, var_rec = recurrent_layer.forward_moments(state.r)
    var = None if var_in is None and var_rec is None else \
        (var_in if var_in is not None else 0) + (var_rec if var_rec is not None else 0)
    u = gaussian_sample(mean_in + mean_rec, var)
    if p.neuron == "rate":
        h = state.h + (u - state.h) / p.tau_m
        r = torch.relu(h)
        return r, SpikeSlabState(h, r)
    s, neuron = neuron_step(u, state.h, p.lif)
    return s, SpikeSlabState(neuron, s)


class SpikeSlabRecurrent(nn.Module):
    """``x (T, B, in) -> r (T, B, hidden)``: :func:`spike_slab_step` over the sequence from rest.

    Initial recurrent mean ``m_rec = rec_gain * I`` (IRNN-style, the paper's) for the rate unit, ``N(0, rec_gain^2 /
    hidden)`` for LIF neurons (an identity would make each spike re-excite itself)."""

    def __init__(self, in_features: int, hidden: int, cell: SpikeSlabCellParameters | None = None,
                 input_gain: float = 1.0, rec_gain: float = 1.0, pi_init: float = 0.02,
                 xi_range: tuple[float, float] = (0.0, 0.1)):
        super().__init__()
        self.cell = cell or SpikeSlabCellParameters()
        self.hidden = hidden
        self.input = SpikeSlabLinear(in_features, hidden, bias=True, m_std=input_gain / math.sqrt(in_features),
                                     pi_init=pi_init, xi_range=xi_range)
        self.recurrent = SpikeSlabLinear(hidden, hidden, bias=False, m_std=rec_gain / math.sqrt(hidden),
                                         pi_init=pi_init, xi_range=xi_range)
        if self.cell.neuron == "rate":
            with torch.no_grad():
                self.recurrent.m.copy_(torch.eye(hidden) * rec_gain)

    def initial_state(self, batch: int, dtype=torch.float32) -> SpikeSlabState:
        zeros = torch.zeros(batch, self.hidden, dtype=dtype)
        h = zeros if self.cell.neuron == "rate" else initial_state((batch, self.hidden), dtype)
        return SpikeSlabState(h, zeros)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.initial_state(x.shape[1], x.dtype)
        out = []
        for t in range(x.shape[0]):
            r, state = spike_slab_step(x[t], state, self.input, self.recurrent, self.cell)
            out.append(r)
        return torch.stack(out)
