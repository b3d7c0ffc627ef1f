"""Symmetric alignment (Kunin et al. 2020; ``--rule sa``): ``R = alpha decay + beta self`` (defaults 1e-3, 2e-3;
regularisers in :mod:`spikes.learning.alignment`), one SGD step on B per batch, ``B <- B - lr_b dR/dB``. The
gradient ``2 alpha B - beta W`` draws B to ``(beta / 2 alpha) W`` (= W at the defaults) without looking at the data."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikes.learning.alignment import AlignmentRule, decay, self_term
from spikes.learning.rule import register_rule
from spikes.options import option


@register_rule
class SymmetricAlignment(AlignmentRule):
    """Symmetric alignment: B learns by alpha*decay + beta*self."""

    name = "sa"

    @dataclass(frozen=True)
    class Options(AlignmentRule.Options):
        lr_b: float = option(0.1, "learning rate of B's SGD step on the regulariser (Kunin et al. train B with the "
                                  "network's SGD, lr 0.1 at batch 256)", min=0.0)
        alpha: float = option(1e-3, "weight of decay = ||W||^2 + ||B||^2", min=0.0)
        beta: float = option(2e-3, "weight of self = -sum(W * B)", min=0.0)

    def after_step(self, before: list[torch.Tensor]) -> None:
        o = self.options
        for name, module in self.layers:
            b = self.feedback[name].detach().requires_grad_(True)
            with torch.enable_grad():
                w = module.weight.detach()
                (grad,) = torch.autograd.grad(o.alpha * decay(w, b) + o.beta * self_term(w, b), b)
            with torch.no_grad():
                self.feedback[name].sub_(o.lr_b * grad)
