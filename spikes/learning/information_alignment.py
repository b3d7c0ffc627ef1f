"""Information alignment (Kunin et al. 2020; ``--rule ia``): ``R = alpha amp + beta null + gamma decay`` (defaults
2e-3, 1e-3, 1e-3; regularisers in :mod:`spikes.learning.alignment`): amp as weight mirror, and the null term
``mean_n ||g(f(x_n; W); B)||^2`` keeps B from sending back what the forward pass maps out (its forward
reconstruction, Kunin's default without reconstruction reversal)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spikes.learning.alignment import RegularisedAlignment, amp, decay, null
from spikes.learning.rule import register_rule
from spikes.options import option


@register_rule
class InformationAlignment(RegularisedAlignment):
    """Information alignment: B learns by alpha*amp + beta*null + gamma*decay on the layer's input (or noise)."""

    name = "ia"

    @dataclass(frozen=True)
    class Options(RegularisedAlignment.Options):
        alpha: float = option(2e-3, "weight of amp = -mean_n sum(f(x;W) * f(x;B))", min=0.0)
        beta: float = option(1e-3, "weight of null = mean_n ||g(f(x;W); B)||^2", min=0.0)
        gamma: float = option(1e-3, "weight of decay = ||W||^2 + ||B||^2", min=0.0)

    def regulariser(self, module: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        o = self.options
        return o.alpha * amp(module, x, w, b) + o.beta * null(module, x, w, b) + o.gamma * decay(w, b)
