r"""A feed-forward network of theta neurons with time-to-first-spike (TTFS) coding, trained by exact spike-time
gradients (Klos & Memmesheimer, arXiv 2309.14523; neuron and equations in :mod:`spikes.neurons.theta`).

Input coding of a feature vector ``x`` in [0, 1] (the tabular sets are min-max scaled):

- ``binary``: features ``x_d >= threshold`` spike once at ``input_start``, the others not at all (one volley, as the
  paper's binarised MNIST with one virtual input neuron);
- ``latency``: feature ``d`` spikes at ``input_start + (1 - x_d) input_span`` (larger values earlier);
- ``bias_input``: one more input neuron that always spikes at ``input_start``.

Every layer is a :class:`ThetaLayer` (weights ``W (N_out, N_in)`` and initial phases ``phi0 (N_out,)``, both
trained; ``phi0`` stays in ``[0, Theta]``, :meth:`ThetaNetwork.constrain_`), simulated exactly, event by event, until
the trial end ``T``. The output is each output neuron's first spike time ``t_k``, or its pseudospike time where it
stays silent (with ``pseudospikes``: the extra input of the rate network ``r_l = H(phi_l(T), W_l r_{l-1}) / Theta``,
``r_0 = 0``; without: the free continuation ``T + Theta - phi(T)``). The class is the earliest output.

Loss (:class:`TTFSObjective`, the paper's): ``CE(softmax(-t), y) + gamma (exp(t_y / T) - 1)``.

The initial phases ``phi0 = phi0_fraction Theta`` (default ``Theta / 2``) with ``phi0 + T < Theta`` keep a neuron
without strong excitatory input silent, so the network starts (almost) silent; the pseudospikes carry the gradient
that wakes it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikes.graph import Affine, Graph, Input, Output
from spikes.graph.theta import Theta
from spikes.learning.rule import Batch, Objective
from spikes.neurons.theta import (
    ThetaParameters, ThetaRun, first_spike_time, pseudo_rates, spike_volleys, theta_layer, ttfs_output,
)

CODINGS = ("binary", "latency")


class ThetaLayer(nn.Module):
    """``n_out`` theta neurons fed by ``n_in`` inputs: ``weight (n_out, n_in)``, ``phi0 (n_out,)`` (float64).

    ``forward(times, drive) -> ThetaRun`` runs the volleys (:func:`spikes.neurons.theta.theta_layer`);
    :meth:`volleys` turns the layer below's spike times into them. ``spike_output`` gives the activity probe the
    spike counts as one step ``(1, B, n_out)`` (spikes per neuron per sample)."""

    def __init__(self, n_in: int, n_out: int, params: ThetaParameters, trial_time: float, w_scale: float,
                 phi0: float, generator: torch.Generator):
        super().__init__()
        width = w_scale / math.sqrt(n_in)
        self.weight = nn.Parameter((torch.rand(n_out, n_in, generator=generator, dtype=torch.float64) * 2 - 1) * width)
        self.phi0 = nn.Parameter(torch.full((n_out,), float(phi0), dtype=torch.float64))
        self.params, self.trial_time = params, float(trial_time)

    def volleys(self, spike_times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return spike_volleys(spike_times, self.weight, self.trial_time)

    def forward(self, times: torch.Tensor, drive: torch.Tensor) -> ThetaRun:
        return theta_layer(times, drive, self.phi0, self.params, self.trial_time)

    @staticmethod
    def spike_output(run: ThetaRun) -> torch.Tensor:
        return run.counts.to(torch.float32).unsqueeze(0)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, T={self.trial_time}"


class ThetaOutput(NamedTuple):
    """``times (B, K)`` the TTFS output (ordinary or pseudo), ``ordinary (B, K)`` the first ordinary spike times
    (``inf``: none), ``hidden_counts (B, N_hidden)`` spikes of every hidden neuron (all hidden layers side by
    side), ``runs`` every layer's :class:`ThetaRun`."""

    times: torch.Tensor
    ordinary: torch.Tensor
    hidden_counts: torch.Tensor
    runs: tuple


class ThetaNetwork(nn.Module):
    """Feed-forward theta network (module docstring): ``n_in`` features -> ``hidden`` -> ``n_classes``."""

    def __init__(self, n_in: int, n_classes: int, hidden: tuple[int, ...] = (64,), tau: float = 6 / math.pi,
                 i0: float = 1.25, trial_time: float = 2.0, coding: str = "binary", threshold: float = 0.5,
                 input_start: float = 0.02, input_span: float = 1.0, bias_input: bool = False, w_scale: float = 0.5,
                 phi0_fraction: float = 0.5, pseudospikes: bool = True, input_flip: float = 0.0, seed: int = 0):
        super().__init__()
        if coding not in CODINGS:
            raise ValueError(f"ThetaNetwork: coding must be one of {CODINGS}, got {coding!r}")
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f"ThetaNetwork: hidden must list one or more layer sizes >= 1, got {hidden!r}")
        self.params = ThetaParameters(tau, i0)
        theta = self.params.period
        if not 0 < trial_time < theta:
            raise ValueError(f"ThetaNetwork: trial_time must be in (0, Theta = {theta:.4g}), got {trial_time}")
        if input_start < 0 or input_start + (input_span if coding == "latency" else 0.0) >= trial_time:
            raise ValueError(f"ThetaNetwork: the inputs (input_start {input_start}, input_span {input_span}) must "
                             f"arrive before trial_time {trial_time}")
        self.n_in, self.n_classes, self.hidden = int(n_in), int(n_classes), tuple(int(h) for h in hidden)
        self.trial_time, self.coding, self.threshold = float(trial_time), coding, float(threshold)
        self.input_start, self.input_span, self.bias_input = float(input_start), float(input_span), bool(bias_input)
        self.pseudospikes, self.input_flip = bool(pseudospikes), float(input_flip)
        g = torch.Generator().manual_seed(int(seed))
        sizes = [self.n_in + int(self.bias_input), *self.hidden, self.n_classes]
        self.layers = nn.ModuleList(ThetaLayer(a, b, self.params, trial_time, w_scale, phi0_fraction * theta, g)
                                    for a, b in zip(sizes[:-1], sizes[1:]))

    # -- input coding ---------------------------------------------------------------------------------
    def input_spike_times(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D [+1])`` float64: each input neuron's spike time (``inf``: no spike)."""
        x = x.to(torch.float64)
        if x.dim() == 3 and x.shape[0] == 1:            # the kind's one-step time axis (1, B, D)
            x = x[0]
        if x.dim() != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"ThetaNetwork: expected inputs (B, {self.n_in}) (or (1, B, {self.n_in})), got "
                             f"{tuple(x.shape)}")
        if self.coding == "binary":
            on = x >= self.threshold
            if self.training and self.input_flip > 0:
                on = on ^ (torch.rand(on.shape, dtype=torch.float64) < self.input_flip)
            t = torch.where(on, torch.full_like(x, self.input_start), torch.full_like(x, math.inf))
        else:
            t = self.input_start + (1.0 - x.clamp(0.0, 1.0)) * self.input_span
        if self.bias_input:
            t = torch.cat([t, torch.full_like(t[:, :1], self.input_start)], dim=1)
        return t

    def first_volleys(self, t_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The input layer's events: one volley for binary coding (every input spikes at ``input_start``), one event
        per input spike for latency coding."""
        layer = self.layers[0]
        if self.coding == "binary":
            on = torch.isfinite(t_in).to(torch.float64)
            drive = (on @ layer.weight.t()).unsqueeze(1)
            times = torch.full((t_in.shape[0], 1), self.input_start, dtype=torch.float64)
            return times, drive
        return layer.volleys(t_in.unsqueeze(2))

    # -- the network ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> ThetaOutput:
        t_in = self.input_spike_times(x)
        runs = []
        times, drive = self.first_volleys(t_in)
        for i, layer in enumerate(self.layers):
            if i:
                times, drive = layer.volleys(runs[-1].spike_times)
            runs.append(layer(times, drive))
        pseudo_in: torch.Tensor | float = 0.0
        if self.pseudospikes:
            rate = None
            for layer, run in zip(self.layers[:-1], runs[:-1]):
                i_ann = torch.zeros_like(run.phase_end) if rate is None else rate @ layer.weight.t()
                rate = pseudo_rates(run.phase_end, i_ann, self.params)
            pseudo_in = rate @ self.layers[-1].weight.t()
        out = runs[-1]
        times = ttfs_output(out, pseudo_in, self.params, self.trial_time)
        hidden = torch.cat([r.counts for r in runs[:-1]], dim=1)
        return ThetaOutput(times, first_spike_time(out.spike_times), hidden, tuple(runs))

    def constrain_(self) -> None:
        """Keep the initial phases in ``[0, Theta]`` (after every optimizer step)."""
        with torch.no_grad():
            for layer in self.layers:
                layer.phi0.clamp_(0.0, self.params.period)

    # -- deploy ---------------------------------------------------------------------------------------
    def to_graph(self, input_shape=None, dt: float = 0.01) -> Graph:
        """``input -> w1: Affine -> theta1: Theta -> ... -> wL -> thetaL -> out``: the trained network as a graph on a
        time grid of step ``dt`` (:class:`spikes.graph.theta.Theta`). Its input is the input neurons' spikes on the
        grid (:meth:`grid_inputs`)."""
        n = self.n_in + int(self.bias_input)
        if input_shape is not None and tuple(input_shape) not in ((self.n_in,), (1, self.n_in)):
            raise ValueError(f"ThetaNetwork.to_graph: input_shape must be ({self.n_in},), got {tuple(input_shape)}")
        nodes: dict = {"input": Input((n,))}
        edges: list[tuple[str, str]] = []
        prev = "input"
        for i, layer in enumerate(self.layers, start=1):
            w = layer.weight.detach().cpu().numpy()
            nodes[f"w{i}"] = Affine(w)
            nodes[f"theta{i}"] = Theta((w.shape[0],), tau=self.params.tau, i0=self.params.i0,
                                       phi0=layer.phi0.detach().cpu().numpy(), dt=dt, trial_time=self.trial_time)
            edges += [(prev, f"w{i}"), (f"w{i}", f"theta{i}")]
            prev = f"theta{i}"
        nodes["out"] = Output((self.n_classes,))
        edges.append((prev, "out"))
        return Graph(nodes, edges)

    def grid_inputs(self, x: torch.Tensor, dt: float) -> np.ndarray:
        """``(steps, B, D [+1])``: the input spikes on the grid of :meth:`to_graph`, a spike at time ``t`` in step
        ``k = floor(t / dt)`` as its timed payload ``1 + t / dt - k`` in ``[1, 2)`` (0: no spike; ``> 0``: the
        spikes), ``steps = ceil(T / dt)``."""
        t = self.input_spike_times(x).detach().numpy()
        steps = int(math.ceil(self.trial_time / dt - 1e-9))
        grid = np.zeros((steps, *t.shape))
        b, d = np.nonzero(np.isfinite(t))
        k = np.floor(t[b, d] / dt + 1e-9).astype(int)
        keep = k < steps
        frac = np.clip(t[b, d] / dt - k, 0.0, np.nextafter(1.0, 0.0))
        grid[k[keep], b[keep], d[keep]] = 1.0 + frac[keep]
        return grid


class TTFSObjective(Objective):
    """The paper's TTFS loss on output times ``t (B, K)``: ``CE(softmax(-t), y) + gamma (exp(t_y / T) - 1)``; the
    class is ``argmin t``. Metrics besides accuracy and loss: ``accuracy_ordinary`` (decided on ordinary spikes only,
    times clipped to ``T``), ``hidden_spikes_per_neuron`` (per sample), ``silent_hidden_fraction`` (hidden neurons
    without a spike, per sample)."""

    def __init__(self, gamma: float, trial_time: float):
        self.gamma, self.trial_time = float(gamma), float(trial_time)

    def loss(self, output: ThetaOutput, batch: Batch) -> torch.Tensor:
        t = output.times
        ce = F.cross_entropy(-t, batch.y)
        t_label = t.gather(1, batch.y.view(-1, 1)).squeeze(1)
        return ce + self.gamma * (torch.exp(t_label / self.trial_time) - 1.0).mean()

    def metric_sums(self, output: ThetaOutput, batch: Batch) -> dict[str, float]:
        t = output.times.detach()
        ordinary = output.ordinary.clamp(max=self.trial_time)
        counts = output.hidden_counts.to(torch.float64)
        return {"accuracy": float((t.argmin(1) == batch.y).sum()),
                "loss": float(self.loss(ThetaOutput(t, *output[1:]), batch)) * batch.size,
                "accuracy_ordinary": float(((ordinary.argmin(1) == batch.y) & (ordinary.min(1).values < self.trial_time))
                                           .sum()),
                "hidden_spikes_per_neuron": float(counts.mean(1).sum()),
                "silent_hidden_fraction": float((counts == 0).to(torch.float64).mean(1).sum())}


def spike_time_table(model: ThetaNetwork, x: torch.Tensor) -> np.ndarray:
    """``(B, K)`` the first ordinary output spike times of ``model`` on ``x`` (``inf`` = silent in the trial)."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x).ordinary.numpy()
    finally:
        model.train(was)
