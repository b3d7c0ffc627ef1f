"""``nn.Module`` wrapper shared by all neuron models: sequence forward, per-step ``step``."""
from __future__ import annotations

import torch
from torch import nn

from spikes.neurons.dynamics import NeuronParameters, NeuronState, neuron_step
from spikes.neurons.sequence import run_sequence


class SpikingNeuron(nn.Module):
    """A population of integrate-and-fire neurons.

    ``forward(x)`` takes the input current of a whole sequence, time first ``(T, B, ...)``, and returns the
    spikes ``(T, B, ...)``; the final state is kept in ``self.state`` when ``stateful`` is true.
    ``step(x_t, state)`` advances one step, for online use.
    """

    def __init__(self, params: NeuronParameters, stateful: bool = False):
        super().__init__()
        self._params = params
        self.stateful = stateful
        self.state: NeuronState | None = None

    @property
    def params(self) -> NeuronParameters:
        return self._params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes, state = run_sequence(x, self.params, self.state if self.stateful else None)
        if self.stateful:
            self.state = NeuronState(*(t.detach() for t in state))
        return spikes

    def step(self, x: torch.Tensor, state: NeuronState | None = None) -> tuple[torch.Tensor, NeuronState]:
        return neuron_step(x, state, self.params)

    def reset_state(self) -> None:
        self.state = None

    def extra_repr(self) -> str:
        p = self.params
        return f"alpha={p.alpha_value:.4g}, alpha_syn={p.alpha_syn}, v_th={p.v_th}, reset={p.reset}, surrogate={p.surrogate.kind}"
