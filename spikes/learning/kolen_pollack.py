"""Kolen-Pollack (Kolen & Pollack 1994; Akrout et al. 2019; ``--rule kp``): the feedback matrix receives the same
change as the forward weight, and both decay. After the optimizer's step ``W + dW`` (``dW`` whatever the optimizer
did: SGD, Adam, its weight decay), with ``eta`` W's current learning rate and ``alpha`` the weight of Kunin's
regulariser ``alpha (||W||^2 + ||B||^2)``:

    B <- (1 - 2 eta alpha) (B + dW),    W <- (1 - 2 eta alpha) (W + dW)

(B has W's shape here: "B receives W^T's update" in the papers' layout), so ``W - B`` shrinks geometrically by
``1 - 2 eta alpha`` per step whatever the gradients are, and B converges to W."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikes.learning.alignment import AlignmentRule
from spikes.learning.rule import register_rule
from spikes.options import option


@register_rule
class KolenPollack(AlignmentRule):
    """Kolen-Pollack: B receives W's update and both decay, so B converges to W."""

    name = "kp"

    @dataclass(frozen=True)
    class Options(AlignmentRule.Options):
        alpha: float = option(1e-3, "decay regulariser weight: W and B shrink by 1 - 2 lr alpha per step", min=0.0)

    def decay_factor(self, weight: torch.Tensor) -> float:
        return 1.0 - 2.0 * self.lr_of(weight) * self.options.alpha

    @torch.no_grad()
    def after_step(self, before: list[torch.Tensor]) -> None:
        for (name, module), w0 in zip(self.layers, before):
            f = self.decay_factor(module.weight)
            self.feedback[name].add_(module.weight - w0).mul_(f)
            module.weight.mul_(f)
