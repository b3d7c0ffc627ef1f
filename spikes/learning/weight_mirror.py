"""Weight mirror (Akrout et al. 2019; ``--rule wm``): B follows the layer's own input-output correlation,
``R = alpha decay + beta amp`` (Kunin et al.'s defaults 1e-3, 1e-3; regularisers in :mod:`spikes.learning.alignment`).
The amp term's gradient ``-mean_n f(x_n; W)^T x_n`` (linear) moves B towards ``W E[x x^T]``: with white noise inputs
(``input_noise``), towards W."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spikes.learning.alignment import RegularisedAlignment, amp, decay
from spikes.learning.rule import register_rule
from spikes.options import option


@register_rule
class WeightMirror(RegularisedAlignment):
    """Weight mirror: B learns by alpha*decay + beta*amp on the layer's input (or noise)."""

    name = "wm"

    @dataclass(frozen=True)
    class Options(RegularisedAlignment.Options):
        alpha: float = option(1e-3, "weight of decay = ||W||^2 + ||B||^2", min=0.0)
        beta: float = option(1e-3, "weight of amp = -mean_n sum(f(x;W) * f(x;B))", min=0.0)

    def regulariser(self, module: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.options.alpha * decay(w, b) + self.options.beta * amp(module, x, w, b)
