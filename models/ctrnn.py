"""Recurrent networks that learn during their lifetime by reward-modulated synaptic fluctuations
(:mod:`spikes.learning.reward_fluctuation`): Beer's continuous-time recurrent neural network (CTRNN) and a
recurrent LIF population, both on the oscillation (CPG) task (:mod:`spikes.datasets.tasks.oscillator`).

Both expose what the rule needs: ``fluctuating()`` (the centre parameters, by name), ``initial_state(batch)`` and
``step(i, state, params) -> (output, state)`` with ``params`` the weights to use at this step (the centres plus
their fluctuation); ``forward(x (T, B, n_in))`` runs the centres from rest and returns the outputs ``(T, B, N)``.

- :class:`CTRNN`: ``spikes.neurons.rate.ctrnn_step``; outputs ``o = sigma(y + theta)``; every neuron gets the
  external input ``sum(x_t)``.
- :class:`LIFPopulation`: ``N`` LIF neurons (``spikes.neurons.neuron_step``, threshold 1, subtractive reset,
  decay ``exp(-dt / tau_m)``) driven by ``W s[t-1] + bias + sum(x_t)``; the output of neuron ``i`` is its
  low-pass filtered spike train ``o_i[t] = o_i[t-1] + (s_i[t] - o_i[t-1]) dt / tau_out`` (a rate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spikes.learning.rule import Batch, Objective
from spikes.neurons.dynamics import NeuronParameters, initial_state, neuron_step
from spikes.neurons.rate import CTRNNParameters, ctrnn_step
from spikes.options import option
from spikes.surrogates import Surrogate


class CTRNN(nn.Module):
    """``n`` CTRNN neurons (module docstring); weights drawn ``U(-weight_range, weight_range)``, biases
    ``U(-bias_range, bias_range)`` (plus the centre-crossing value ``-sum_j W_ij / 2`` with ``centre_crossing``,
    which puts every neuron's sensitive range within reach of its inputs), time constants ``U(tau_min, tau_max)`` (fixed), from ``seed``."""

    def __init__(self, n: int = 3, dt: float = 0.1, weight_range: float = 8.0, bias_range: float = 2.0,
                 tau_min: float = 1.0, tau_max: float = 1.0, centre_crossing: bool = True, seed: int = 0):
        super().__init__()
        if n < 1 or dt <= 0 or not 0 < tau_min <= tau_max:
            raise ValueError(f"CTRNN: need n >= 1, dt > 0, 0 < tau_min <= tau_max; got n={n}, dt={dt}, "
                             f"tau_min={tau_min}, tau_max={tau_max}")
        g = torch.Generator().manual_seed(seed)
        u = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1  # noqa: E731
        self.n, self.dt = n, dt
        self.weight = nn.Parameter(u(n, n) * weight_range)
        bias = u(n) * bias_range
        if centre_crossing:     # Mathayomchan & Beer: theta_i = -sum_j W_ij / 2 (+ the random part)
            bias = bias - self.weight.detach().sum(1) / 2
        self.bias = nn.Parameter(bias)
        self.register_buffer("tau", tau_min + (tau_max - tau_min) * (u(n) + 1) / 2)

    def fluctuating(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "bias": self.bias}

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.n, dtype=self.weight.dtype)

    def step(self, i: torch.Tensor, y: torch.Tensor, params: dict[str, torch.Tensor]):
        drive = i.sum(-1, keepdim=True).to(y.dtype).expand_as(y)
        return ctrnn_step(drive, y, CTRNNParameters(params["weight"], params["bias"], self.tau, self.dt))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state, outs = self.initial_state(x.shape[1]), []
        params = self.fluctuating()
        for t in range(x.shape[0]):
            o, state = self.step(x[t], state, params)
            outs.append(o)
        return torch.stack(outs)


class LIFPopulation(nn.Module):
    """``n`` recurrently coupled LIF neurons with filtered-spike outputs (module docstring); recurrent weights
    ``U(-weight_range, weight_range)`` (zero diagonal), bias currents ``U(bias_min, bias_max)``."""

    def __init__(self, n: int = 8, dt: float = 1.0, tau_m: float = 10.0, tau_out: float = 20.0,
                 weight_range: float = 0.5, bias_min: float = 0.0, bias_max: float = 0.2, seed: int = 0):
        super().__init__()
        if n < 1 or dt <= 0 or tau_m <= 0 or tau_out < dt:
            raise ValueError(f"LIFPopulation: need n >= 1, dt > 0, tau_m > 0, tau_out >= dt; got n={n}, dt={dt}, "
                             f"tau_m={tau_m}, tau_out={tau_out}")
        g = torch.Generator().manual_seed(seed)
        self.n, self.dt, self.tau_out = n, dt, tau_out
        w = (torch.rand(n, n, generator=g, dtype=torch.float64) * 2 - 1) * weight_range
        self.weight = nn.Parameter(w * (1 - torch.eye(n, dtype=torch.float64)))
        self.bias = nn.Parameter(bias_min + (bias_max - bias_min) * torch.rand(n, generator=g, dtype=torch.float64))
        self.neuron = NeuronParameters(alpha=math.exp(-dt / tau_m), v_th=1.0, reset="subtract", surrogate=Surrogate())

    def fluctuating(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "bias": self.bias}

    def initial_state(self, batch: int):
        zeros = torch.zeros(batch, self.n, dtype=self.weight.dtype)
        return initial_state((batch, self.n), self.weight.dtype), zeros, zeros      # neuron, last spikes, output

    def step(self, i: torch.Tensor, state, params: dict[str, torch.Tensor]):
        neuron, spikes, out = state
        w = params["weight"]
        rec = spikes @ w.T if w.dim() == 2 else (w @ spikes.unsqueeze(-1)).squeeze(-1)
        current = rec + params["bias"] + i.sum(-1, keepdim=True).to(rec.dtype)
        s, neuron = neuron_step(current, neuron, self.neuron)
        out = out + (s - out) * (self.dt / self.tau_out)
        return out, (neuron, s, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state, outs = self.initial_state(x.shape[1]), []
        params = self.fluctuating()
        for t in range(x.shape[0]):
            o, state = self.step(x[t], state, params)
            outs.append(o)
        return torch.stack(outs)


class OscillationObjective(Objective):
    """Fitness of an oscillator (higher is better): ``mean_{t >= t0, i} |o_i[t] - o_i[t-1]| / dt`` over each
    sequence after a transient of ``transient`` steps; ``performance(prev, now)`` is the instantaneous version the
    fluctuation rule averages into its reward. ``loss = -fitness`` (what the trainer logs)."""

    metric_name = "fitness"
    higher_is_better = True
    differentiable = False

    def __init__(self, dt: float, transient: int = 0):
        self.dt, self.transient = dt, transient

    def performance(self, prev: torch.Tensor, now: torch.Tensor) -> torch.Tensor:
        return (now - prev).abs().mean(-1) / self.dt

    def fitness(self, output: torch.Tensor) -> torch.Tensor:
        """``(B,)`` fitness of outputs ``(T, B, N)``."""
        o = output[self.transient:] if output.shape[0] > self.transient + 1 else output
        return (o[1:] - o[:-1]).abs().mean(dim=(0, 2)) / self.dt

    def loss(self, output: Any, batch: Batch) -> torch.Tensor:
        return -self.fitness(output).mean()

    def metric_sums(self, output: Any, batch: Batch) -> dict[str, float]:
        f = self.fitness(output.detach())
        return {"fitness": float(f.sum()), "loss": float(-f.sum())}


@dataclass(frozen=True)
class CTRNNOptions:
    """The ``[model]`` table of kind ``ctrnn``."""

    n: int = option(3, "neurons (the paper: 2 to 4)", min=1)
    dt: float = option(0.1, "Euler step (time units)", min=0.0, min_exclusive=True)
    weight_range: float = option(8.0, "initial weights U(-range, range)", min=0.0)
    bias_range: float = option(2.0, "initial biases U(-range, range) around the centre-crossing value", min=0.0)
    tau_min: float = option(1.0, "time constants U(tau_min, tau_max)", min=0.0, min_exclusive=True)
    tau_max: float = option(1.0, "time constants U(tau_min, tau_max)", min=0.0, min_exclusive=True)
    centre_crossing: bool = option(True, "biases start at the centre-crossing value -sum_j W_ij / 2 (plus the "
                                         "random part)")
    transient: int = option(500, "test: steps of the run from rest left out of the fitness", min=0)


@dataclass(frozen=True)
class LIFPopulationOptions:
    """The ``[model]`` table of kind ``lif_population``."""

    n: int = option(8, "LIF neurons", min=1)
    dt: float = option(1.0, "time step (ms)", min=0.0, min_exclusive=True)
    tau_m: float = option(10.0, "membrane time constant (ms)", min=0.0, min_exclusive=True)
    tau_out: float = option(20.0, "output filter time constant (ms)", min=0.0, min_exclusive=True)
    weight_range: float = option(0.5, "initial recurrent weights U(-range, range), zero diagonal", min=0.0)
    bias_min: float = option(0.0, "initial bias currents U(bias_min, bias_max)")
    bias_max: float = option(0.2, "initial bias currents U(bias_min, bias_max)")
    transient: int = option(200, "test: steps of the run from rest left out of the fitness", min=0)
