"""Learning without weight transport (Kunin et al., ICML 2020): the shared base of the rules fa, ss, kp, wm, ia, sa
and dfa, and the layer-local regularisers that train the feedback matrices.

Every synaptic layer (``nn.Linear``/``nn.Conv2d`` and spikes' event versions, inside ``TimeDistributed`` too) keeps
a feedback matrix ``B`` of its weight's shape; the backward pass sends ``dx = dy . B`` (conv: the transposed
convolution with ``B``) instead of ``dy . W`` (:mod:`spikes.layers.feedback`), while ``dW`` stays autograd's. The
rest is backpropagation through time with surrogate gradients (:class:`spikes.learning.bptt.BPTT`): the optimizer
steps ``W`` on these gradients, then the rule updates ``B`` (``after_step``):

- ``fa``  B fixed random; ``ss``  B = sign(W) * |B0|; ``kp``  B receives W's change, both decay;
- ``wm``, ``ia``, ``sa``: one SGD step on a layer-local regulariser ``R(x, W, B)``:
  ``B <- B - lr_b dR/dB`` (x the layer's input of the batch, or noise; x and W held fixed);
- ``dfa``: the output layer's error sent straight to every other layer's output (no B per layer).

Regularisers (the "primitives", mean over the rows n of the batch, which are (time step, sample) pairs for a
sequence; ``f(x; K)`` is the layer's map with kernel K and no bias, ``x K^T`` or ``conv2d(x, K)``; ``g(y; K)`` its
feedback map ``y . K`` or ``conv_transpose2d(y, K)``):

    decay  = ||W||^2 + ||B||^2
    self   = - sum(W * B)                                     (= -tr(W^T B))
    amp    = - mean_n sum( f(x_n; W) * f(x_n; B) )
    null   =   mean_n || g(f(x_n; W); B) ||^2                 (Kunin's IA default: the forward reconstruction)
    sparse =   mean_n ( ||f(x_n; W)||^2 + ||f(x_n; B)||^2 )

With ``B = W`` (our layout) backprop is recovered. Every ``log_every`` steps the rule logs, per layer, the angle
between ``W`` and ``B`` (the papers' angle between W^T and B, in their layout) as ``angle_wb/<layer>``, and the
angle between the gradient the rule hands the optimizer for W and the true backprop gradient of the same batch
(a second backward pass through the same graph, with the feedback switched off) as ``angle_grad/<layer>``, in
degrees (left out where a gradient is zero); they land in ``metrics.jsonl``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from spikes.layers.feedback import (FeedbackHooks, angle_degrees, check_synaptic, default_feedback, feedback_map,
                                    forward_map, quiet_first_layer, synaptic_layers)
from spikes.learning.bptt import BPTT
from spikes.learning.rule import Batch, Objective, StepOutput, constrain
from spikes.options import option

NOISE = ("none", "normal", "uniform")


# ----------------------------------------------------------------------------------------- regularisers

def _rows(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer input as rows ``(n, in)`` (linear) or images ``(n, C, H, W)`` (conv)."""
    return x.reshape(-1, *x.shape[-3:]) if isinstance(module, nn.Conv2d) else x.reshape(-1, x.shape[-1])


def decay(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||W||^2 + ||B||^2``."""
    return w.pow(2).sum() + b.pow(2).sum()


def self_term(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``-sum(W * B)``."""
    return -(w * b).sum()


def amp(module: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``-mean_n sum(f(x_n; W) * f(x_n; B))``."""
    xr = _rows(module, x)
    return -(forward_map(module, xr, w) * forward_map(module, xr, b)).sum() / xr.shape[0]


def null(module: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean_n ||g(f(x_n; W); B)||^2``."""
    xr = _rows(module, x)
    return feedback_map(module, forward_map(module, xr, w), b, xr.shape).pow(2).sum() / xr.shape[0]


def sparse(module: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean_n (||f(x_n; W)||^2 + ||f(x_n; B)||^2)``."""
    xr = _rows(module, x)
    return (forward_map(module, xr, w).pow(2).sum() + forward_map(module, xr, b).pow(2).sum()) / xr.shape[0]


# ----------------------------------------------------------------------------------------- the base rule

class AlignmentRule(BPTT):
    """Backprop with a feedback matrix B per synaptic layer in place of W in the backward pass (module docstring).
    Subclasses set ``name``, and override ``initial_feedback`` and ``after_step``."""

    name = ""
    measures_alignment: ClassVar[bool] = True     # B has W's shape: log angle_wb
    record_inputs: ClassVar[bool] = False         # the regularisers need each layer's input
    recurrent_feedback: ClassVar[bool] = True     # RecurrentLIF's recurrent matrix gets a B too

    @dataclass(frozen=True)
    class Options(BPTT.Options):
        log_every: int = option(10, "log the angles W-vs-B and rule-vs-true gradient every N steps (0 = never; "
                                    "the true gradient costs one more backward pass)", min=0)
        feedback_scale: float = option(1.0, "random feedback: U(-s, s), s = feedback_scale / sqrt(fan_in) (torch's "
                                            "Kaiming-uniform init of a weight)", min=0.0, min_exclusive=True)
        feedback_init: str = option("kaiming", "random feedback's spread: 'kaiming' (feedback_scale / sqrt(fan_in)) "
                                               "or 'weight' (the standard deviation of the layer's weight at setup, "
                                               "times feedback_scale: the error keeps backprop's scale through "
                                               "He/Glorot-initialised layers)", choices=("kaiming", "weight"))

    def __init__(self, options=None):
        super().__init__(options)
        self.layers: list[tuple[str, nn.Module]] = []
        self.feedback: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.hooks = None
        self.last_grad_angles: dict[str, float] = {}

    # -- setup
    def check(self, model, objective: Objective) -> None:
        super().check(model, objective)
        layers = synaptic_layers(model, self.recurrent_feedback)
        if not layers:
            raise ValueError(f"rule {self.name!r} replaces the backward pass of synaptic layers (nn.Linear, nn.Conv2d "
                             f"and spikes' event versions); {type(model).__name__} has none")
        for name, module in layers:
            check_synaptic(name, module)

    def setup(self, model: nn.Module, optimizer, seed: int = 0) -> None:
        super().setup(model, optimizer, seed)
        self.layers = synaptic_layers(model, self.recurrent_feedback)
        self.noise = torch.Generator().manual_seed(seed + 0x5EED)
        for index, (name, module) in enumerate(self.layers):
            with torch.no_grad():
                b = self.initial_feedback(index, name, module)
            if b is not None:
                self.feedback[name] = b
        self.hooks = self.install()

    def layer_generator(self, index: int) -> torch.Generator:
        """The generator of layer ``index``'s random draws (independent of the order in which they are made)."""
        return torch.Generator().manual_seed((self.seed * 1_000_003 + index + 1) % (1 << 62))

    def initial_feedback(self, index: int, name: str, module: nn.Module) -> torch.Tensor | None:
        """B at the start: random, ``U(-s, s)`` (:func:`spikes.layers.feedback.default_feedback`); with
        ``feedback_init = 'weight'``, ``s = feedback_scale sqrt(3) std(W)`` (W's spread at setup; Kaiming-uniform
        where W is constant)."""
        o = self.options
        scale = o.feedback_scale
        if o.feedback_init == "weight":
            std = float(module.weight.detach().double().std()) if module.weight.numel() > 1 else 0.0
            if std > 0:      # default_feedback's bound is scale / sqrt(fan_in); ask it for sqrt(3) std instead
                scale = o.feedback_scale * math.sqrt(3.0) * std * math.sqrt(module.weight[0].numel())
        return default_feedback(module, self.layer_generator(index), scale)

    def install(self):
        return FeedbackHooks(self.layers, self.feedback, record_inputs=self.record_inputs)

    # -- one step
    def train_step(self, model: nn.Module, batch: Batch, objective: Objective) -> StepOutput:
        if self.optimizer is None:
            raise ValueError(f"rule {self.name!r} needs an optimizer")
        self.hooks.recording = True
        try:
            output = objective.forward(model, batch)
        finally:
            self.hooks.recording = False
        loss = objective.loss(output, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"rule {self.name!r}: the loss became {float(loss)}")
        weights = [m.weight for _, m in self.layers]
        measure = bool(self.options.log_every) and self.steps % self.options.log_every == 0
        with quiet_first_layer():
            true = torch.autograd.grad(loss, weights, retain_graph=True, allow_unused=True) if measure else None
            self.optimizer.zero_grad(set_to_none=True)
            self.hooks.enabled = True        # the feedback path acts on this backward pass only
            try:
                loss.backward()
            finally:
                self.hooks.enabled = False
        before = [w.detach().clone() for w in weights]
        self.optimizer.step()                 # clips first when grad_clip is set (BPTT.setup)
        constrain(model)
        self.after_step(before)
        if isinstance(self.hooks, FeedbackHooks):
            self.hooks.inputs.clear()
        self.steps += 1
        extra: dict[str, float] = {}
        if measure:
            for (name, module), g_true in zip(self.layers, true):
                angles = {"angle_wb": angle_degrees(module.weight, self.feedback[name]) if self.measures_alignment
                          else None,
                          "angle_grad": None if g_true is None or module.weight.grad is None
                          else angle_degrees(module.weight.grad, g_true)}
                extra.update({f"{key}/{name}": a for key, a in angles.items() if a is not None})   # no angle to 0
                if angles["angle_grad"] is not None:
                    self.last_grad_angles[name] = angles["angle_grad"]
        return StepOutput(float(loss.detach()), output, extra)

    @torch.no_grad()
    def measurements(self, model: nn.Module) -> dict[str, dict[str, float]]:
        """``angle_wb``: the angle between W and B per layer now; ``angle_grad``: the last measured angle between the
        rule's and the true gradient (every ``log_every`` steps)."""
        out: dict[str, dict[str, float]] = {}
        if self.measures_alignment:
            out["angle_wb"] = {name: angle_degrees(m.weight, self.feedback[name]) for name, m in self.layers
                               if name in self.feedback}
        if self.last_grad_angles:
            out["angle_grad"] = dict(self.last_grad_angles)
        return out

    def after_step(self, before: list[torch.Tensor]) -> None:
        """Update B after the optimizer has stepped W (``before``: the weights before the step). Default: B fixed."""

    def lr_of(self, param: torch.Tensor) -> float:
        """The optimizer's current learning rate for ``param``."""
        for group in self.optimizer.param_groups:
            if any(p is param for p in group["params"]):
                return float(group["lr"])
        raise ValueError(f"rule {self.name!r}: a synaptic weight of shape {tuple(param.shape)} is not in the optimizer")

    # -- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"feedback": {k: v.detach().clone() for k, v in self.feedback.items()}, "steps": self.steps,
                "noise": self.noise.get_state(), "grad_angles": dict(self.last_grad_angles)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        saved = state.get("feedback", {})
        shapes = {name: tuple(self.feedback[name].shape) for name in self.feedback}
        if self.measures_alignment and set(saved) != set(shapes):
            raise ValueError(f"rule {self.name!r}: the checkpoint has feedback matrices for layers {sorted(saved)}, "
                             f"the model's synaptic layers are {sorted(shapes)}")
        names = {n for n, _ in self.layers}
        for name, b in saved.items():
            if name not in names:
                raise ValueError(f"rule {self.name!r}: the checkpoint has a feedback matrix for layer {name!r}, which "
                                 f"the model does not have (its synaptic layers: {sorted(names)})")
            if name in shapes and tuple(b.shape) != shapes[name]:
                raise ValueError(f"rule {self.name!r}: layer {name!r}'s feedback matrix in the checkpoint has shape "
                                 f"{tuple(b.shape)}, the model needs {shapes[name]}")
            if name in self.feedback:
                self.feedback[name].copy_(b)
            else:
                self.feedback[name] = b.clone()
        self.steps = int(state.get("steps", 0))
        self.last_grad_angles = dict(state.get("grad_angles", {}))
        if "noise" in state:
            self.noise.set_state(state["noise"])


class RegularisedAlignment(AlignmentRule):
    """B trained by one SGD step per batch on a layer-local regulariser ``R(x, W, B)`` (``regulariser``), with x the
    layer's input of the batch (stop-gradient) or noise of its shape, W after the optimizer's step (held fixed):
    ``B <- B - lr_b dR/dB`` (dR/dB by autograd). A layer whose forward did not run this step keeps its B."""

    record_inputs = True
    data_parallel = False    # B's step reads this process's inputs of the batch, not the global batch's

    @dataclass(frozen=True)
    class Options(AlignmentRule.Options):
        lr_b: float = option(0.1, "learning rate of B's SGD step on the regulariser (Kunin et al. train B with the "
                                  "network's SGD, lr 0.1 at batch 256)", min=0.0)
        input_noise: str = option("none", "regulariser input: the layer's input of the batch ('none') or noise of "
                                          "its shape", choices=NOISE)
        input_std: float = option(1.0, "standard deviation of the noise input", min=0.0, min_exclusive=True)

    def regulariser(self, module: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def regulariser_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x``, or noise of its shape: N(0, std^2), or U(-sqrt(3) std, sqrt(3) std) (the same variance)."""
        o = self.options
        if o.input_noise == "none":
            return x
        if o.input_noise == "normal":
            z = torch.randn(x.shape, generator=self.noise, dtype=torch.float64) * o.input_std
        else:
            z = (torch.rand(x.shape, generator=self.noise, dtype=torch.float64) * 2 - 1) * (3 ** 0.5 * o.input_std)
        return z.to(dtype=x.dtype, device=x.device)

    def after_step(self, before: list[torch.Tensor]) -> None:
        for name, module in self.layers:
            x = self.hooks.inputs.get(name)
            if x is None:
                continue
            b = self.feedback[name].detach().requires_grad_(True)
            with torch.enable_grad():
                r = self.regulariser(module, self.regulariser_input(x), module.weight.detach(), b)
                (grad,) = torch.autograd.grad(r, b)
            with torch.no_grad():
                self.feedback[name].sub_(self.options.lr_b * grad)
