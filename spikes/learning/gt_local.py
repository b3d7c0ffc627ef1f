"""The growth-transform local rule as a learning rule (``--rule gt``): no backward pass, no optimizer.

At every GT iteration of a sample, each learning layer's couplings change by the local rule of
:mod:`spikes.learning.gt_rule` (``Q0_ij += eta mask_ij sum_b (s+_i - s-_i)(d_j + theta_j)``, re-symmetrised),
which lowers the residual and so the spike count. The network drives its own iterations and calls the rule's
update on its layers (``run(x, label_codes, learn=True)``, the protocol of ``spikes.models.gt_network``); the
per-layer learning rates and the freezing schedule are the network's (``learning_rates()``), and the rule
advances its epoch count after each epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

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

    def train_step(self, model, batch: Batch, objective: Objective) -> StepOutput:
        for attr in ("run", "label_codes"):
            if not hasattr(model, attr):
                raise ValueError(f"rule 'gt' trains growth-transform networks; {type(model).__name__} has no {attr}()")
        spikes = model.run(batch.x, model.label_codes(batch.y), learn=True).total
        return StepOutput(float(spikes.sum()) / batch.size, None, {"spikes_per_sample": float(spikes.mean())})

    def end_epoch(self, model, epoch: int) -> None:
        model.epochs_trained = epoch
