"""The growth-transform local rule as a learning rule (``--rule gt``): no backward pass, no optimizer.

At every GT iteration of a sample, each learning layer's couplings change by the local rule of
:mod:`spikes.learning.gt_rule`::

    Q0_ij <- Q0_ij + eta * mask_ij * sum_batch (s+_i - s-_i) (d_j + theta_j),    d = v+ - v-
    Q0    <- (Q0 + Q0^T) / 2

which lowers the residual and so the spike count. The network drives its own iterations and hands each learning
layer back to the rule after the layer's step (``run(x, label_codes, update=rule.update_layer)``):
:meth:`GTLocal.update_layer` applies the equation to the layer (anything with ``q0``, ``mask``, ``theta`` and
``set_q0``; e.g. ``spikes.models.gt_network.DifferentialGTLayer``). The per-layer learning rates and the freezing
schedule are the network's (``learning_rates()``, from its ``epochs_trained``), which the rule advances after each
epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikes.learning.gt_rule import gt_rule_update
from spikes.learning.rule import Batch, LearningRule, Objective, StepOutput, register_rule


@register_rule
class GTLocal(LearningRule):
    """Sparsity-driven local learning of growth-transform networks."""

    name = "gt"
    uses_optimizer = False
    data_parallel = False

    @dataclass(frozen=True)
    class Options:
        pass

    @staticmethod
    def update_layer(layer, s: torch.Tensor, v: torch.Tensor, eta: float) -> None:
        """One application of the rule (module docstring) to ``layer``, for its spikes ``s`` and the potentials
        ``v`` ``(B, 2N)`` they were read from, summed over the batch."""
        layer.set_q0(gt_rule_update(layer.q0, s, v, eta, layer.mask, layer.theta))

    def check(self, model, objective: Objective) -> None:
        for attr in ("run", "label_codes", "epochs_trained"):
            if not hasattr(model, attr):
                raise ValueError(f"rule 'gt' trains growth-transform networks; {type(model).__name__} has no {attr}")

    def train_step(self, model, batch: Batch, objective: Objective) -> StepOutput:
        self.check(model, objective)
        spikes = model.run(batch.x, model.label_codes(batch.y), update=self.update_layer).total
        return StepOutput(float(spikes.sum()) / batch.size, None, {"spikes_per_sample": float(spikes.mean())})

    def end_epoch(self, model, epoch: int) -> None:
        model.epochs_trained = epoch
