"""Spike-and-slab recurrent networks (Zou, Li & Huang, Phys. Rev. E 107, 024307, 2023): an ensemble of RNNs, every
connection zero with probability pi or else Gaussian N(m, xi), trained by BPTT through the mean-field forward
(:mod:`spikes.layers.spike_slab`).

:class:`SpikeSlabRNN`: input ``x (T, B, n_in)``, each step shown ``repeat`` times (a finer time scan for spiking
units), a :class:`~spikes.layers.spike_slab.SpikeSlabRecurrent` population of ``hidden`` rate units (``relu``,
leak ``1 / tau_m``; the paper's network) or LIF neurons, and a spike-and-slab readout into a leaky integrator

    o_t = o_{t-1} + (W_out r_t + b - o_{t-1}) / tau_out          (tau_out = 1: o_t = W_out r_t + b)

so the output is ``o (T * repeat, B, n_out)``. :class:`ReadoutObjective` scores a trial by the mean of ``o`` over
its loss window (the data set's ``loss_mask``, else the last input step) with softmax cross-entropy, plus
``sparsity * mean(1 - pi)`` over every spike-and-slab connection (a pull towards pruned connections; 0: none).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikes.layers.spike_slab import (NEURONS, SpikeSlabCellParameters, SpikeSlabLinear, SpikeSlabRecurrent,
                                      gaussian_sample, spike_slab_layers)
from spikes.learning.rule import Batch, Objective
from spikes.neurons.dynamics import NeuronParameters
from spikes.surrogates import Surrogate


class SpikeSlabRNN(nn.Module):
    """Module docstring; weights drawn from ``seed``."""

    def __init__(self, n_in: int, n_out: int, hidden: int = 64, neuron: str = "rate", tau_m: float = 1.0,
                 tau_out: float = 1.0, repeat: int = 1, input_gain: float = 1.0, rec_gain: float = 1.0,
                 pi_init: float = 0.02, xi_max: float = 0.1, v_th: float = 1.0, seed: int = 0):
        super().__init__()
        if neuron not in NEURONS:
            raise ValueError(f"model.neuron must be one of {NEURONS}, got {neuron!r}")
        if repeat < 1 or tau_out < 1 or hidden < 1:
            raise ValueError(f"SpikeSlabRNN: need hidden >= 1, repeat >= 1, tau_out >= 1; got {hidden}, {repeat}, "
                             f"{tau_out}")
        torch.manual_seed(seed)
        lif = None
        if neuron == "lif":
            lif = NeuronParameters(alpha=math.exp(-1.0 / tau_m), v_th=v_th, reset="subtract", surrogate=Surrogate())
        self.cell = SpikeSlabCellParameters(neuron=neuron, tau_m=tau_m, lif=lif)
        self.rnn = SpikeSlabRecurrent(n_in, hidden, self.cell, input_gain=input_gain, rec_gain=rec_gain,
                                      pi_init=pi_init, xi_range=(0.0, xi_max))
        self.readout = SpikeSlabLinear(hidden, n_out, bias=True, pi_init=pi_init, xi_range=(0.0, xi_max))
        self.repeat, self.tau_out = repeat, tau_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.repeat > 1:
            x = x.repeat_interleave(self.repeat, dim=0)
        r = self.rnn(x)
        u = gaussian_sample(*self.readout.forward_moments(r))
        if self.tau_out == 1:
            return u
        o, out = torch.zeros_like(u[0]), []
        for t in range(u.shape[0]):
            o = o + (u[t] - o) / self.tau_out
            out.append(o)
        return torch.stack(out)


class ReadoutObjective(Objective):
    """Classification of a sequence by the mean readout over the loss window (module docstring). ``repeat``: the
    model's steps per input step (the window, given per input step, is stretched to match)."""

    def __init__(self, repeat: int = 1, sparsity: float = 0.0):
        self.repeat, self.sparsity = repeat, sparsity

    def scores(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        """``(B, K)``: the readout averaged over the loss window."""
        mask = batch.mask
        if mask is None:
            mask = torch.zeros(output.shape[0] // self.repeat, dtype=output.dtype)
            mask[-1] = 1.0
        mask = torch.as_tensor(mask, dtype=output.dtype).repeat_interleave(self.repeat)
        if mask.shape[0] != output.shape[0]:
            raise ValueError(f"loss mask of {mask.shape[0] // self.repeat} steps for a sequence of "
                             f"{output.shape[0] // self.repeat}")
        return (output * mask[:, None, None]).sum(0) / mask.sum()

    def forward(self, model: nn.Module, batch: Batch) -> Any:
        out = model(batch.x)
        if not self.sparsity or not model.training:
            return out, None
        pis = [layer.pi for layer in spike_slab_layers(model).values()]
        return out, sum((1 - p).sum() for p in pis) / sum(p.numel() for p in pis)

    def loss(self, output: Any, batch: Batch) -> torch.Tensor:
        out, density = output
        loss = F.cross_entropy(self.scores(out, batch), batch.y)
        return loss if density is None else loss + self.sparsity * density

    def metric_sums(self, output: Any, batch: Batch) -> dict[str, float]:
        scores = self.scores(output[0].detach(), batch)
        return {"accuracy": float((scores.argmax(1) == batch.y).sum()),
                "loss": float(F.cross_entropy(scores, batch.y, reduction="sum"))}
