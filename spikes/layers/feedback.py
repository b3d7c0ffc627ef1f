"""Backward passes without weight transport: a separate feedback matrix ``B`` per synaptic layer.

Convention (Kunin et al. 2020's ``dx = dy . B``, in torch's layout): a synaptic layer computes
``y = x W^T + b`` (``nn.Linear``, ``W`` of shape ``(out, in)``) or ``y = conv2d(x, W) + b`` (``nn.Conv2d``,
``W`` of shape ``(C_out, C_in/groups, kh, kw)``). ``B`` has **W's shape**, and the backward pass sends

    linear:  dL/dx = dL/dy . B                         (backprop: dL/dy . W)
    conv:    dL/dx = conv_transpose2d(dL/dy, B)        (same stride, padding, dilation, groups; output_padding
                                                        chosen so that dx has x's shape)

so ``B = W`` is backprop (the transport case) and the "angle between W^T and B" of the papers (TF layout
``y = x W``) is here the angle between ``W`` and ``B``. The weight gradient stays autograd's true
``dL/dW = dy^T x``: only the signal sent to the layer below changes. The forward pass is untouched (the hook
wraps the module, so ``EventLinear``/``EventConv2d`` keep their event kernels); the substitution is a full
backward hook (``register_full_backward_hook``) replacing the module's ``grad_input``.

:class:`DirectFeedback` is direct feedback alignment instead: the error at the output layer's output,
``e = dL/dy_L``, is sent to every other synaptic layer's output through a fixed matrix:
``dL/dy_l := e . D_l`` (``D_l`` of shape ``(n_out, features of y_l)``).

Synaptic modules: ``nn.Linear`` and ``nn.Conv2d`` and their subclasses (``EventLinear``, ``EventConv2d``),
also inside ``TimeDistributed`` and as ``RecurrentLIF.input``; and ``RecurrentLIF``'s recurrent matrix, as the
layer ``<name>.recurrent`` (:class:`RecurrentSynapses`, the map ``s[t-1] -> s[t-1] W_rec^T``): its backward through
time (the compiled kernel, or the reference loop) sends ``g[t] . B`` back to ``s[t-1]`` (``feedback_source`` of the
layer). Direct feedback alignment leaves the recurrent matrix to backprop through time.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from spikes.layers.recurrent import RecurrentLIF

SYNAPTIC = (nn.Linear, nn.Conv2d)


class RecurrentSynapses(nn.Linear):
    """The recurrent matrix of ``owner`` (a :class:`RecurrentLIF`) as a synaptic layer: a linear map whose ``weight``
    is ``owner.weight_rec`` (the same Parameter) and whose input is the population's spikes one step earlier. It
    is never called and is not a submodule of the model (the model's parameters and state_dict are unchanged)."""

    def __init__(self, owner: RecurrentLIF):
        nn.Module.__init__(self)
        self.in_features = self.out_features = owner.weight_rec.shape[0]
        self.weight = owner.weight_rec
        self.bias = None
        object.__setattr__(self, "owner", owner)      # not registered: the owner is not a child of its proxy



@contextlib.contextmanager
def quiet_first_layer():
    """Silence torch's warning, at every backward pass, that the full backward hook of a layer whose input needs no
    gradient (the first layer) fires anyway: its ``grad_input`` is None, which the hook leaves alone."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with "
                                                  "respect to module outputs since no inputs require gradients")
        yield


def synaptic_layers(model: nn.Module, recurrent: bool = True) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``nn.Linear``/``nn.Conv2d`` (subclasses included) in ``model``, in module order;
    with ``recurrent``, each ``RecurrentLIF``'s recurrent matrix follows its input projection as
    ``(<name>.recurrent, RecurrentSynapses)``."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, SYNAPTIC)]
    if recurrent:
        for name, m in model.named_modules():
            if isinstance(m, RecurrentLIF):
                prefix = f"{name}." if name else ""
                at = next(i for i, (n, _) in enumerate(layers) if n == f"{prefix}input")
                layers.insert(at + 1, (f"{prefix}recurrent", RecurrentSynapses(m)))
    return layers


def check_synaptic(name: str, module: nn.Module) -> None:
    """Raise ValueError naming the layer when its feedback pass cannot be built."""
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            raise ValueError(f"layer {name!r}: Conv2d padding={module.padding!r} is not supported by the feedback "
                             "pass; give the padding as numbers")
        if module.padding_mode != "zeros":
            raise ValueError(f"layer {name!r}: Conv2d padding_mode={module.padding_mode!r} is not supported by the "
                             "feedback pass (only 'zeros')")
    elif not isinstance(module, nn.Linear):
        raise ValueError(f"layer {name!r}: {type(module).__name__} is not a synaptic layer (nn.Linear or nn.Conv2d)")


def forward_map(module: nn.Module, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The layer's synaptic map with ``kernel`` in place of its weight, no bias: ``x K^T`` or ``conv2d(x, K)``.
    Linear input ``(..., in)`` -> ``(rows, out)``; conv input ``(..., C, H, W)`` -> ``(images, C_out, Ho, Wo)``."""
    if isinstance(module, nn.Conv2d):
        return F.conv2d(x.reshape(-1, *x.shape[-3:]), kernel, None, module.stride, module.padding, module.dilation,
                        module.groups)
    return F.linear(x.reshape(-1, x.shape[-1]), kernel)


def feedback_map(module: nn.Module, dy: torch.Tensor, kernel: torch.Tensor, input_shape) -> torch.Tensor:
    """The signal sent below through ``kernel``: ``dy . K`` (linear) or ``conv_transpose2d(dy, K)`` (conv), shaped
    like the layer's input ``input_shape`` (any leading dimensions)."""
    if isinstance(module, nn.Conv2d):
        images = dy.reshape(-1, *dy.shape[-3:])
        h_in, w_in = input_shape[-2:]
        pad = []
        for a, size in enumerate((h_in, w_in)):
            k, s, p, d = module.kernel_size[a], module.stride[a], module.padding[a], module.dilation[a]
            pad.append(size - ((images.shape[2 + a] - 1) * s - 2 * p + d * (k - 1) + 1))
        dx = F.conv_transpose2d(images, kernel, None, module.stride, module.padding, tuple(pad), module.groups,
                                module.dilation)
        return dx.reshape(input_shape)
    return (dy @ kernel).reshape(input_shape)


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """The angle between two tensors as vectors, in degrees (None when either is zero: no angle)."""
    a, b = a.detach().reshape(-1).double(), b.detach().reshape(-1).double()
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return None
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / (na * nb)))))


def default_feedback(module: nn.Module, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    """A random ``B`` of the weight's shape, drawn as torch initialises the weight (Kaiming-uniform with
    a = sqrt(5)): ``U(-s, s)``, ``s = scale / sqrt(fan_in)``, ``fan_in = in_features`` (linear) or
    ``C_in/groups * kh * kw`` (conv)."""
    w = module.weight
    fan_in = w[0].numel()
    bound = scale / math.sqrt(fan_in)
    b = (torch.rand(w.shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound
    return b.to(dtype=w.dtype, device=w.device)


class FeedbackHooks:
    """Full backward hooks that send ``dx = feedback_map(dy, B)`` (module docstring) instead of autograd's input
    gradient, for each named module of ``layers``, with ``B = feedback[name]`` read at backward time (so a rule
    can replace or update the tensors between steps). The hooks act only while ``enabled`` (a rule sets it around
    its own ``loss.backward()``): any other backward pass through the layers, such as the true backprop gradient
    taken for measurements or the spike probe's fan-out computation inside the forward pass, gets autograd's
    gradient. ``record_inputs``: while ``recording``, keep each layer's last input (detached) in
    ``inputs[name]`` (the layer-local alignment regularisers need it), from calls with the layer's own weight only
    (not ``functional_call``s with other parameters); a layer whose forward did not run (``RecurrentLIF``'s event
    path sums its input inside the recurrent kernel) has no entry."""

    def __init__(self, layers: list[tuple[str, nn.Module]], feedback: dict[str, torch.Tensor],
                 record_inputs: bool = False):
        for name, module in layers:
            check_synaptic(name, module)
            if name not in feedback or feedback[name].shape != module.weight.shape:
                raise ValueError(f"layer {name!r}: feedback matrix of shape "
                                 f"{tuple(feedback[name].shape) if name in feedback else None} does not match the "
                                 f"weight {tuple(module.weight.shape)}")
        self.feedback = feedback
        self.enabled = False
        self.recording = False
        self.inputs: dict[str, torch.Tensor] = {}
        self.weights = {name: module.weight for name, module in layers}
        self.handles = []
        self.owners: list[RecurrentLIF] = []
        for name, module in layers:
            if isinstance(module, RecurrentSynapses):        # the kernel asks for B at backward time
                module.owner.feedback_source = self._source(name)
                self.owners.append(module.owner)
                if record_inputs:
                    self.handles.append(module.owner.register_forward_hook(self._record_recurrent(name)))
                continue
            self.handles.append(module.register_full_backward_hook(self._backward_hook(name)))
            if record_inputs:
                self.handles.append(module.register_forward_pre_hook(self._record(name)))

    def _source(self, name: str) -> Callable[[], torch.Tensor | None]:
        return lambda: self.feedback[name] if self.enabled else None

    def _record_recurrent(self, name: str) -> Callable:
        def hook(module, args, spikes):       # the recurrent map's input: the spikes of the step before
            if self.recording and spikes.shape[0] > 1:
                self.inputs[name] = spikes[:-1].detach()
        return hook

    def _record(self, name: str) -> Callable:
        def hook(module, args):
            if self.recording and module.weight is self.weights[name]:
                self.inputs[name] = args[0].detach()
        return hook

    def _backward_hook(self, name: str) -> Callable:
        def hook(module, grad_input, grad_output):
            if not self.enabled or grad_input[0] is None:
                return None
            b = self.feedback[name].to(grad_output[0].dtype)
            return (feedback_map(module, grad_output[0], b, grad_input[0].shape),) + tuple(grad_input[1:])
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        for owner in self.owners:
            owner.feedback_source = None
        self.owners = []


class DirectFeedback:
    """Direct feedback alignment hooks (Nøkland 2016). The last module of ``layers`` is the output layer; its output
    ``y_L`` (rows x n_out) gets autograd's gradient ``e = dL/dy_L`` (the output error), which is kept. Every other
    layer's output ``y_l`` then gets ``dL/dy_l := e . D_l`` in place of what backprop sends, with ``D_l`` a fixed
    matrix ``(n_out, F_l)`` (``F_l`` = features of one row of ``y_l``: ``out_features``, or ``C*H*W`` for a conv),
    so ``dL/dW_l = (e D_l)^T x_l``. For a spiking network this is the layer's output **current** (the input of its
    neurons): no surrogate derivative of the layer's own neurons multiplies the signal. Rows: a row of ``y_l`` is a
    (time step, sample); when ``y_l`` has ``k`` times the output's rows (the output is read once per sample, the
    hidden layer every step, time first), each step gets the sample's error. ``make(name, n_out, F_l)`` draws
    ``D_l`` the first time the layer's size is seen; ``feedback`` holds them. The hooks act only while ``enabled``
    (as :class:`FeedbackHooks`); otherwise autograd's gradient passes."""

    def __init__(self, layers: list[tuple[str, nn.Module]], feedback: dict[str, torch.Tensor],
                 make: Callable[[str, int, int], torch.Tensor]):
        if len(layers) < 2:
            raise ValueError("direct feedback alignment needs at least two synaptic layers (an output and a hidden one)")
        for name, module in layers:
            check_synaptic(name, module)
        self.output_name = layers[-1][0]
        self.feedback, self.make = feedback, make
        self.enabled = False
        self.error: torch.Tensor | None = None
        self.handles = [module.register_forward_hook(self._forward_hook(name)) for name, module in layers]

    def _forward_hook(self, name: str) -> Callable:
        def hook(module, args, output):
            if not (isinstance(output, torch.Tensor) and output.requires_grad):
                return None
            if name == self.output_name:
                self.error = None
                output.register_hook(self._keep_error)
            else:
                output.register_hook(self._send(name, 1 if isinstance(module, nn.Linear) else 3))
            return None
        return hook

    def _keep_error(self, grad: torch.Tensor) -> None:
        if self.enabled:
            self.error = grad.detach()

    def _send(self, name: str, feature_dims: int) -> Callable:
        def hook(grad: torch.Tensor):
            if not self.enabled:
                return None
            if self.error is None:
                raise RuntimeError(f"direct feedback: layer {name!r} got its gradient before the output layer "
                                   f"{self.output_name!r} (is {self.output_name!r} after it in the forward pass?)")
            n_out = self.error.shape[-1]
            e = self.error.reshape(-1, n_out)
            f = math.prod(grad.shape[grad.dim() - feature_dims:])
            rows = grad.numel() // f
            if rows != e.shape[0]:
                if rows % e.shape[0]:
                    raise ValueError(f"direct feedback: layer {name!r} has {rows} rows, the output layer "
                                     f"{self.output_name!r} {e.shape[0]}: neither a multiple of the other")
                e = e.repeat(rows // e.shape[0], 1)
            if name not in self.feedback:
                self.feedback[name] = self.make(name, n_out, f)
            d = self.feedback[name]
            if d.shape != (n_out, f):
                raise ValueError(f"direct feedback: layer {name!r} needs a matrix ({n_out}, {f}), has {tuple(d.shape)}")
            return (e @ d.to(e.dtype)).reshape(grad.shape).to(grad.dtype)
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
