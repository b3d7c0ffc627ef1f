"""Recurrent spiking population: input projection and recurrence in compiled loops.

``I[t] = W_in x[t] + b;  s[t] = neuron(I[t] + W_rec s[t-1])``

The recurrence, forward and backward, runs in one compiled loop (``spikes.neurons.sequence.run_recurrent``) that
adds only the columns of ``W_rec`` of the neurons that spiked. A sparse input (``EventLinear``'s event path) is
projected inside the same loop from the columns of ``W_in`` of the active inputs
(``run_recurrent_events``: the current I and its gradient are never stored); otherwise the projection runs
first as one matmul over the whole sequence. ``zero_diagonal`` removes self-connections (W_rec[n, n] = 0).
``feedback_source`` (set by the rules without weight transport) makes the backward recurrence send its gradient
through a feedback matrix B in place of W_rec.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from spikes.layers.event_linear import EventLinear
from spikes.neurons.dynamics import NeuronParameters, NeuronState, neuron_step
from spikes.neurons.sequence import fast_path_unsupported, run_recurrent, run_recurrent_events


class RecurrentLIF(nn.Module):
    """``(T, B, in) -> spikes (T, B, hidden)``; any member of the neuron family via ``params``."""

    def __init__(self, in_features: int, hidden: int, params: NeuronParameters | None = None, bias: bool = True,
                 zero_diagonal: bool = False, stateful: bool = False, max_input_density: float = 0.15):
        super().__init__()
        if in_features <= 0 or hidden <= 0:
            raise ValueError(f"RecurrentLIF needs in_features > 0 and hidden > 0, got {in_features}, {hidden}")
        self.params = params if params is not None else NeuronParameters()
        self.input = EventLinear(in_features, hidden, bias=bias, max_density=max_input_density)
        self.weight_rec = nn.Parameter(torch.empty(hidden, hidden))
        nn.init.kaiming_uniform_(self.weight_rec, a=math.sqrt(5))  # nn.Linear's default
        self.zero_diagonal = zero_diagonal
        if zero_diagonal:
            self.register_buffer("_mask", 1.0 - torch.eye(hidden))
        self.stateful = stateful
        self.state: NeuronState | None = None
        self.last_spikes: torch.Tensor | None = None
        # set by a rule without weight transport (spikes.layers.feedback): called at backward time, returns the
        # feedback matrix B the recurrence sends its gradient back through (None: W_rec, backprop)
        self.feedback_source: Callable[[], torch.Tensor | None] | None = None

    def recurrent_weight(self) -> torch.Tensor:
        """W_rec as used (diagonal zeroed when ``zero_diagonal``)."""
        return self.weight_rec * self._mask if self.zero_diagonal else self.weight_rec

    def _feedback(self) -> torch.Tensor | None:
        b = self.feedback_source() if self.feedback_source is not None else None
        return None if b is None else b * self._mask if self.zero_diagonal else b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"RecurrentLIF expects (T, B, {self.input.in_features}), got {tuple(x.shape)}")
        state, s0 = (self.state, self.last_spikes) if self.stateful else (None, None)
        events = self.input.events(x) if fast_path_unsupported(x, self.params) is None else None
        feedback = self._feedback if self.feedback_source is not None else None
        if events is None:
            spikes, state = run_recurrent(self.input(x), self.recurrent_weight(), self.params, state, s0, feedback)
        else:  # sparse input: the projection is summed inside the recurrent kernel
            spikes, state = run_recurrent_events(events, x.shape[:2], self.input.weight, self.input.bias,
                                                 self.recurrent_weight(), self.params, state, s0, feedback)
        if self.stateful:
            self.state = NeuronState(*(t.detach() for t in state))
            self.last_spikes = spikes[-1].detach()
        return spikes

    def step(self, x_t: torch.Tensor, state: NeuronState | None = None,
             s_prev: torch.Tensor | None = None) -> tuple[torch.Tensor, NeuronState]:
        """One step: ``s = neuron(W_in x_t + b + W_rec s_prev)``."""
        cur = self.input(x_t)
        if s_prev is not None:
            cur = cur + s_prev @ self.recurrent_weight().t()
        return neuron_step(cur, state, self.params)

    def reset_state(self) -> None:
        self.state = None
        self.last_spikes = None

    def extra_repr(self) -> str:
        return f"{self.input.in_features}, {self.weight_rec.shape[0]}, zero_diagonal={self.zero_diagonal}"
