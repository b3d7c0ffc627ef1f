"""Sign symmetry (Liao, Leibo & Poggio 2016; Xiao et al. 2018; ``--rule ss``): the feedback matrix has the forward
weight's signs, recomputed after every step, ``B = sign(W) * M`` with a fixed magnitude ``M``: ``|B0|`` of a random
draw (``magnitude = "random"``, B0 as feedback alignment's B) or 1 (``"unit"``, the plain ``B = sign(W)``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spikes.learning.alignment import AlignmentRule
from spikes.learning.rule import register_rule
from spikes.options import option


@register_rule
class SignSymmetry(AlignmentRule):
    """Sign symmetry: B = sign(W) times a fixed magnitude, recomputed after each step."""

    name = "ss"

    @dataclass(frozen=True)
    class Options(AlignmentRule.Options):
        magnitude: str = option("random", "|B|: 'random' (|B0| of a Kaiming-uniform draw) or 'unit' (B = sign(W))",
                                choices=("random", "unit"))

    def __init__(self, options=None):
        super().__init__(options)
        self.magnitudes: dict[str, torch.Tensor] = {}

    def initial_feedback(self, index: int, name: str, module: nn.Module) -> torch.Tensor:
        m = super().initial_feedback(index, name, module).abs()
        if self.options.magnitude == "unit":
            m = torch.ones_like(m)
        self.magnitudes[name] = m
        return torch.sign(module.weight.detach()) * m

    @torch.no_grad()
    def after_step(self, before: list[torch.Tensor]) -> None:
        for name, module in self.layers:
            self.feedback[name].copy_(torch.sign(module.weight) * self.magnitudes[name])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "magnitudes": {k: v.clone() for k, v in self.magnitudes.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for name, m in state.get("magnitudes", {}).items():
            self.magnitudes[name].copy_(m)
