"""Whole-sequence execution of a population: ``x (T, B, ...) -> spikes (T, B, ...)``.

Reference implementation: a per-step loop over ``x.unbind(0)`` (never ``x[t]``, whose backward allocates a
full-size gradient per step). Faster kernels must give identical spikes and allclose gradients.
"""
from __future__ import annotations

import torch

from spikes.neurons.dynamics import NeuronParameters, NeuronState, neuron_step


def run_sequence(x: torch.Tensor, p: NeuronParameters, state: NeuronState | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Run the population over time: ``x`` is the input current, time first."""
    spikes = []
    for x_t in x.unbind(0):
        s, state = neuron_step(x_t, state, p)
        spikes.append(s)
    return torch.stack(spikes), state


def run_recurrent(x: torch.Tensor, w_rec: torch.Tensor, p: NeuronParameters, state: NeuronState | None = None,
                  s0: torch.Tensor | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Recurrent population: step t receives ``x[t] + s[t-1] @ w_rec.T`` (``w_rec`` is (N, N), out x in)."""
    spikes = []
    s = s0 if s0 is not None else torch.zeros_like(x[0])
    for x_t in x.unbind(0):
        s, state = neuron_step(x_t + s @ w_rec.t(), state, p)
        spikes.append(s)
    return torch.stack(spikes), state
