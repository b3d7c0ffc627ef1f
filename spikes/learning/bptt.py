"""Surrogate-gradient backpropagation through time (``--rule bptt``).

The network runs forward over the whole sequence, autograd differentiates the objective's loss through
every step (spikes through their surrogate derivative, ``spikes.surrogates``), and the optimizer takes one
step: ``W <- opt(W, dL/dW)``. Layers' structural constraints (e.g. a zero recurrent diagonal) are re-imposed
after the step (:func:`spikes.learning.rule.constrain`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spikes.learning.rule import Batch, LearningRule, Objective, StepOutput, constrain, register_rule
from spikes.options import option


@register_rule
class BPTT(LearningRule):
    """Backpropagation through time with surrogate gradients."""

    name = "bptt"

    @dataclass(frozen=True)
    class Options:
        grad_clip: float = option(0.0, "clip the global gradient norm to this value (0 = no clipping)", min=0.0)

    def check(self, model, objective: Objective) -> None:
        if not isinstance(model, nn.Module) or not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"rule 'bptt' trains parameters by their gradients; {type(model).__name__} has none "
                             "(a growth-transform network learns with rule 'gt')")
        if not objective.differentiable:
            raise ValueError(f"rule 'bptt': the objective {type(objective).__name__} has no differentiable loss")

    def setup(self, model: nn.Module, optimizer, seed: int = 0) -> None:
        """Gradient clipping runs as the optimizer's step pre-hook, on the gradients the step uses (after they are
        averaged across processes in data-parallel training, whose hook is registered first)."""
        super().setup(model, optimizer, seed)
        if self.options.grad_clip and optimizer is not None:
            def clip(opt, args, kwargs) -> None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), self.options.grad_clip)
            optimizer.register_step_pre_hook(clip)

    def train_step(self, model: nn.Module, batch: Batch, objective: Objective) -> StepOutput:
        if self.optimizer is None:
            raise ValueError("rule 'bptt' needs an optimizer")
        output = objective.forward(model, batch)
        loss = objective.loss(output, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"rule 'bptt': the loss became {float(loss)}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()                 # clips first when grad_clip is set (setup)
        constrain(model)
        return StepOutput(float(loss.detach()), output)
