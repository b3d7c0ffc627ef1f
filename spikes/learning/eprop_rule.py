"""e-prop as a learning rule (``--rule eprop``): gradients computed forward in time, no stored history.

The learner of :mod:`spikes.learning.eprop` runs the network's e-prop layer step by step, keeps eligibility
traces, and accumulates ``g_ji = sum_t L_j[t] e_ji[t]`` with the learning signal ``L = B dE/dy`` of the
objective's online loss (``Objective.online``). The accumulated gradients go to the optimizer every
``update_every`` steps inside the sequence (online updates) and at its end. Feedback ``B``: ``symmetric``
(``W_out^T``), ``random`` (fixed), ``adaptive`` (Kolen-Pollack); the random/adaptive matrix is the rule's
state and is saved in checkpoints. The firing-rate regulariser's weight and target are the objective's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spikes.learning.eprop import FEEDBACKS, EProp, EPropConfig, find_eprop_layer
from spikes.learning.rule import Batch, LearningRule, Objective, StepOutput, register_rule
from spikes.options import option


@register_rule
class Eprop(LearningRule):
    """Online e-prop (Bellec et al. 2020) for networks with an e-prop recurrent layer."""

    name = "eprop"
    data_parallel = False    # online updates inside a sequence and the learning signal's feedback are per process

    @dataclass(frozen=True)
    class Options:
        feedback: str = option("symmetric", "learning-signal feedback B", choices=FEEDBACKS)
        update_every: int = option(0, "apply the accumulated gradients every N steps inside a sequence (0 = at its end)",
                                   min=0)
        weight_decay: float = option(0.0, "adaptive feedback: B and W_out both decay by lr * weight_decay per update",
                                     min=0.0)

    def __init__(self, options=None):
        super().__init__(options)
        self.learner: EProp | None = None

    def _learner(self, model: nn.Module, objective: Objective) -> EProp:
        if self.learner is None:
            if self.optimizer is None:
                raise ValueError("rule 'eprop' needs an optimizer")
            o = self.options
            self.learner = EProp(model, EPropConfig(feedback=o.feedback, c_reg=getattr(objective, "c_reg", 0.0),
                                                    f_target=getattr(objective, "f_target", 10.0),
                                                    weight_decay=o.weight_decay, seed=self.seed),
                                 optimizer=self.optimizer)
            if getattr(self, "_pending_state", None):
                self._restore(self._pending_state)
        return self.learner

    def check(self, model, objective: Objective) -> None:
        find_eprop_layer(model)                      # names the model when it has no (or several) e-prop layers
        if not objective.has_online:
            raise ValueError(f"rule 'eprop' learns forward in time and needs an online loss; the objective "
                             f"{type(objective).__name__} has none (a sequence task's does)")

    @torch.no_grad()
    def train_step(self, model: nn.Module, batch: Batch, objective: Objective) -> StepOutput:
        """The sequence ``batch.x (T, B, n_in)`` step by step; the loss reported is the objective's, as autograd
        rules report it: the task loss ``sum_t E_t`` plus the firing-rate regulariser of every update's segment
        (with ``update_every = 0``, the regulariser of the whole sequence, as ``SequenceObjective.loss``)."""
        learner = self._learner(model, objective)
        n_in = learner.layer.cfg.n_in
        if batch.x.dim() != 3 or batch.x.shape[-1] != n_in:
            raise ValueError(f"rule 'eprop': the batch must be a sequence (T, B, n_in={n_in}), got "
                             f"{tuple(batch.x.shape)}")
        y = learner.run(batch.x, objective.online(batch), self.options.update_every or None)
        z = learner.spikes
        return StepOutput(learner.loss_sum + learner.run_regularizer, (y, z), {"rate_per_step": float(z.mean())})

    def state_dict(self) -> dict:
        if self.learner is None:   # not built yet (no step since a resume): what the checkpoint held
            return dict(getattr(self, "_pending_state", None) or {})
        fb = self.learner.feedback
        return {} if fb is None else {"feedback": fb.clone()}

    def _restore(self, state: dict) -> None:
        if "feedback" in state:
            self.learner.feedback = state["feedback"].clone()

    def load_state_dict(self, state: dict) -> None:
        if self.learner is None:
            self._pending_state = dict(state)       # restored when the learner is made (first step)
        else:
            self._restore(state)
