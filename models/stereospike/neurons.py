"""Stateless one-step spiking units of StereoSpike (one timestep per sample, no membrane memory).

IF:   ``S = H(x - v_th)`` with ``x = W * S_in`` (the conv output), ``v_th = 1``, reset to 0 after the step.
PLIF: ``S = H(g x - v_th)`` with a learnable gain ``g = k * sigmoid(w)``; for a single step from ``v = 0``
      SpikingJelly's PLIF ``v = v + (x - v) / tau`` gives ``v = x / tau``, so ``g = k / tau`` with ``tau``
      learned (initial ``tau0 = 3``) after a fixed input gain ``k = 10`` (the paper's ``x10``).
      On hardware the gain folds into the incoming conv weights (``W' = g W``).

Both use ``spikes.surrogates.Surrogate`` (ATan, slope 2 by default) for the backward pass. We keep these
tiny modules here instead of ``spikes.neurons`` modules with ``T = 1`` because a stateless step needs no
time axis, state object or reset: one ``H(.)`` call is the whole neuron.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from spikes.surrogates import Surrogate


class OneStepIF(nn.Module):
    """Integrate-and-fire neuron for one step: ``S = H(x - v_th)`` (surrogate gradient backward)."""

    def __init__(self, v_th: float = 1.0, surrogate: Surrogate | None = None):
        super().__init__()
        if not v_th > 0:
            raise ValueError(f"OneStepIF v_th must be > 0, got {v_th}")
        self.v_th = float(v_th)
        self.surrogate = surrogate or Surrogate("atan", 2.0)

    def gain(self) -> torch.Tensor | float:
        """Input gain folded into the preceding weights at export (1 for IF)."""
        return 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate(x * self.gain() - self.v_th)

    def spike_output(self, output: torch.Tensor) -> torch.Tensor:
        """Its spikes as one time step ``(1, B, C, H, W)`` (for ``spikes.metrics.SpikeProbe``)."""
        return output[None]

    def extra_repr(self) -> str:
        return f"v_th={self.v_th}, surrogate={self.surrogate.kind}({self.surrogate.slope})"


class OneStepPLIF(OneStepIF):
    """PLIF neuron for one step: ``S = H(k sigmoid(w) x - v_th)``, ``sigmoid(w) = 1 / tau`` learned."""

    def __init__(self, tau0: float = 3.0, input_gain: float = 10.0, v_th: float = 1.0,
                 surrogate: Surrogate | None = None):
        super().__init__(v_th, surrogate)
        if not tau0 > 1.0:
            raise ValueError(f"OneStepPLIF tau0 must be > 1, got {tau0}")
        self.input_gain = float(input_gain)
        self.w = nn.Parameter(torch.tensor(-math.log(tau0 - 1.0)))

    def gain(self) -> torch.Tensor:
        return self.input_gain * torch.sigmoid(self.w)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tau={1.0 / float(torch.sigmoid(self.w)):.3g}, input_gain={self.input_gain}"


NEURONS = {"if": OneStepIF, "plif": OneStepPLIF}


def make_neuron(kind: str, surrogate: Surrogate | None = None) -> OneStepIF:
    """A one-step neuron of ``kind`` ('if' or 'plif')."""
    if kind not in NEURONS:
        raise ValueError(f"neuron kind {kind!r} is unknown; choose one of {', '.join(NEURONS)}")
    return NEURONS[kind](surrogate=surrogate)
