"""The ``LearningRule`` interface: how one batch changes a network, whatever the network is.

The trainer (:mod:`spikes.training.loop`) owns the data order, the optimizer's schedule, checkpoints and
callbacks; a rule owns what happens between a batch going in and the weights having changed. A rule may

- replace the backward pass (e-prop computes its gradients forward in time, with no stored history), and
  hand them to the optimizer: ``uses_optimizer = True``;
- add layer-local updates that need no optimizer (the growth-transform rule changes the couplings at
  every iteration of the network): ``uses_optimizer = False``;
- or both (a rule may write ``.grad`` for some parameters and update others itself).

The task's loss comes from an :class:`Objective`, which the model kind supplies (classification on spike
counts, on a leaky readout over a sequence, depth regression, ...): rules know no model by name. Every
rule is registered under a short name (``bptt``, ``eprop``, ``gt``) for ``spikes train --rule``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class Batch:
    """One batch: input ``x`` (time first ``(T, B, ...)`` for sequences, ``(B, ...)`` otherwise), target ``y``
    (labels ``(B,)`` or a dense target), and an optional per-step loss ``mask (T,)`` (1 where the loss counts)."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.y.shape[0])


@dataclass
class StepOutput:
    """What one training step reports: the objective's ``loss`` (float, regularisers included), the network's
    ``output`` (what the objective's ``metric_sums`` reads; None when the rule produces none) and extra scalars
    for the log."""

    loss: float
    output: Any
    extra: dict[str, float] = field(default_factory=dict)


class Objective(ABC):
    """A task's loss and metrics on a model's output.

    ``loss(output, batch)`` is differentiable (for rules that use autograd); ``online(batch)`` gives an online
    loss with ``step(t, y_t) -> (E_t, dE/dy_t)`` for rules that learn forward in time (only sequence tasks have
    one: ``has_online``); ``metric_sums(output, batch)`` returns sums over the batch (``{"accuracy": 7.0, ...}``)
    that the trainer adds up and divides by the sample count (or by ``"_weight"`` when given: pixels of a depth
    map); ``metric_name`` names the headline metric, ``higher_is_better`` its direction; ``differentiable`` says
    whether ``loss`` can be backpropagated.
    """

    metric_name: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True
    differentiable: ClassVar[bool] = True
    has_online: ClassVar[bool] = False

    @abstractmethod
    def loss(self, output: Any, batch: Batch) -> torch.Tensor: ...

    def online(self, batch: Batch):
        raise NotImplementedError(f"{type(self).__name__} has no online (forward-in-time) loss: rules that learn "
                                  "online, such as e-prop, need a sequence task")

    @abstractmethod
    def metric_sums(self, output: Any, batch: Batch) -> dict[str, float]: ...

    def forward(self, model: nn.Module, batch: Batch) -> Any:
        """The model's output on ``batch`` (overridden where a model needs more than ``model(x)``)."""
        return model(batch.x)


class LearningRule(ABC):
    """Base class of learning rules (module docstring). Subclasses set ``name`` and implement ``train_step``.

    ``Options`` is a dataclass of the rule's settings (the ``[rule]`` table of a run config); its fields are
    validated by the config schema, its defaults document the rule. ``data_parallel``: whether the rule's
    updates are gradients that data-parallel training could average across processes.
    """

    name: ClassVar[str] = ""
    uses_optimizer: ClassVar[bool] = True
    data_parallel: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options:
        pass

    def __init__(self, options: "LearningRule.Options | None" = None):
        self.options = options if options is not None else self.Options()
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, seed: int = 0) -> None:
        """Called once before training, before ``load_state_dict`` on a resume; ``seed`` seeds the rule's own
        random draws (e.g. a random feedback matrix)."""
        self.model, self.optimizer, self.seed = model, optimizer, seed

    @abstractmethod
    def train_step(self, model: nn.Module, batch: Batch, objective: Objective) -> StepOutput:
        """Run ``batch`` through ``model`` and change its weights once (or several times, online)."""

    def check(self, model, objective: Objective) -> None:
        """Raise ValueError saying why this rule cannot train ``model`` on ``objective`` (called before training)."""

    def end_epoch(self, model: nn.Module, epoch: int) -> None:
        """Called after each epoch (``epoch`` = epochs completed)."""

    def measurements(self, model: nn.Module) -> dict[str, dict[str, float]]:
        """What the rule measured of the trained model, ``{measure: {layer: value}}`` (e.g. the alignment rules'
        ``angle_wb``), put in the run's ``summary.json`` under ``learning`` for ``spikes compare``. Default: none."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The rule's own state (feedback matrices, traces that outlive a batch), saved in checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"rule {self.name!r} keeps no state, but the checkpoint holds {sorted(state)}")


RULES: dict[str, type[LearningRule]] = {}


def register_rule(cls: type[LearningRule]) -> type[LearningRule]:
    """Class decorator: make ``cls`` available as ``spikes train --rule <cls.name>``."""
    if not cls.name or cls.name in RULES:
        raise ValueError(f"rule name {cls.name!r} is empty or already registered")
    RULES[cls.name] = cls
    return cls


def constrain(model: nn.Module) -> None:
    """Re-impose the structural constraints of the model's layers after an update (e.g. a recurrent matrix's
    zero diagonal): every submodule with a ``constrain_()`` method is called."""
    for m in model.modules():
        hook = getattr(m, "constrain_", None)
        if callable(hook):
            hook()
