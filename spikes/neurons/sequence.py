"""Whole-sequence execution of a population: ``x (T, B, ...) -> spikes (T, B, ...)``.

``run_sequence`` and ``run_recurrent`` run the recurrence of ``spikes.neurons.dynamics`` over all steps in
one compiled loop (``spikes.kernels``) wrapped in a ``torch.autograd.Function`` whose backward is the
adjoint loop: nothing per step goes through autograd, and only the pre-reset membrane and the spikes are
kept for backward. Spikes are identical to the per-step reference (``*_reference``, a loop of
``neuron_step`` over ``x.unbind(0)``); gradients agree up to float summation order.

The reference loop is used, explicitly, when the kernels cannot run: ``fast_path_unsupported`` gives the
reason (numba missing, ``SPIKES_REFERENCE=1``, a non-CPU device, a dtype other than float32/float64).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from spikes import kernels
from spikes.kernels import buffers
from spikes.neurons.dynamics import NeuronParameters, NeuronState, initial_state, neuron_step


def run_sequence_reference(x: torch.Tensor, p: NeuronParameters,
                           state: NeuronState | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Per-step loop of ``neuron_step`` (autograd through every step)."""
    spikes = []
    for x_t in x.unbind(0):
        s, state = neuron_step(x_t, state, p)
        spikes.append(s)
    return torch.stack(spikes), state


def run_recurrent_reference(x: torch.Tensor, w_rec: torch.Tensor, p: NeuronParameters,
                            state: NeuronState | None = None,
                            s0: torch.Tensor | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Per-step loop: step t receives ``x[t] + s[t-1] @ w_rec.T``."""
    spikes = []
    s = s0 if s0 is not None else torch.zeros_like(x[0])
    for x_t in x.unbind(0):
        s, state = neuron_step(x_t + s @ w_rec.t(), state, p)
        spikes.append(s)
    return torch.stack(spikes), state


def fast_path_unsupported(x: torch.Tensor, p: NeuronParameters) -> str | None:
    """Why the compiled kernel cannot run this input (None when it can)."""
    reason = kernels.unavailable_reason()
    if reason:
        return reason
    if x.device.type != "cpu":
        return f"the compiled kernels are CPU-only, input is on {x.device}"
    if x.dtype not in (torch.float32, torch.float64):
        return f"the compiled kernels take float32/float64, input is {x.dtype}"
    if isinstance(p.alpha, torch.Tensor) and p.alpha.device.type != "cpu":
        return f"alpha is on {p.alpha.device}"
    return None


def run_sequence(x: torch.Tensor, p: NeuronParameters, state: NeuronState | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Run the population over time: ``x`` is the input current, time first ``(T, B, ...)``."""
    if x.dim() < 2:
        raise ValueError(f"run_sequence needs input of shape (T, B, ...), got {tuple(x.shape)}")
    if fast_path_unsupported(x, p) is not None:
        return run_sequence_reference(x, p, state)
    t_steps, shape = x.shape[0], x.shape[1:]
    order = _memory_order(x)  # neurons in x's memory order: no copy for e.g. channels-last input
    inverse = [order.index(d) for d in range(len(order))]
    xm = x.permute(0, *(d + 1 for d in order))
    v0, i0, a0, r0 = _flat_state(state, shape, x, "run_sequence", order)
    alpha_t = p.alpha if isinstance(p.alpha, torch.Tensor) else None
    s, v, i, a, r = _SequenceFunction.apply(xm.reshape(t_steps, -1), alpha_t, v0, i0, a0, r0, p)
    back = [0, *(d + 1 for d in inverse)]
    s = s.reshape(xm.shape).permute(back)
    return s, NeuronState(*(t.reshape(xm.shape[1:]).permute(inverse) for t in (v, i, a, r)))


def run_recurrent(x: torch.Tensor, w_rec: torch.Tensor, p: NeuronParameters, state: NeuronState | None = None,
                  s0: torch.Tensor | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Recurrent population: step t receives ``x[t] + s[t-1] @ w_rec.T`` (``x`` is (T, B, N), ``w_rec`` (N, N), out x in).

    Forward adds only the columns of ``w_rec`` of the neurons that spiked; backward runs the adjoint
    recurrence in the same compiled loop and accumulates ``dL/dw_rec`` from the active neurons only.
    """
    if x.dim() != 3:
        raise ValueError(f"run_recurrent needs input of shape (T, B, N), got {tuple(x.shape)}")
    n = x.shape[2]
    if w_rec.shape != (n, n):
        raise ValueError(f"run_recurrent: w_rec must be ({n}, {n}) for {n} neurons, got {tuple(w_rec.shape)}")
    if s0 is not None and s0.shape != x.shape[1:]:
        raise ValueError(f"run_recurrent: s0 must have shape {tuple(x.shape[1:])}, got {tuple(s0.shape)}")
    if fast_path_unsupported(x, p) is not None or w_rec.device != x.device:
        return run_recurrent_reference(x, w_rec, p, state, s0)
    shape = x.shape[1:]
    v0, i0, a0, r0 = _flat_state(state, shape, x, "run_recurrent")
    v0, i0, a0, r0 = (t.reshape(shape) for t in (v0, i0, a0, r0))
    s0 = torch.zeros(shape, dtype=x.dtype) if s0 is None else s0.to(x.dtype)
    alpha_t = p.alpha if isinstance(p.alpha, torch.Tensor) else None
    s, v, i, a, r = _RecurrentFunction.apply(x, w_rec.to(x.dtype), s0, alpha_t, v0, i0, a0, r0, p)
    return s, NeuronState(v, i, a, r)


# ----------------------------------------------------------------------------------------------------------

def _memory_order(x: torch.Tensor) -> list[int]:
    """The neuron dimensions of ``x`` (time first), outermost first in memory: ``x.permute(0, *(d + 1 ...))`` is
    contiguous when x is dense in any layout with time outermost (channels-last conv output); else 0, 1, ..."""
    dims = list(range(x.dim() - 1))
    if x.is_contiguous() or x.stride(0) != x[0].numel():
        return dims
    order = sorted(dims, key=lambda d: -x.stride(d + 1))
    return order if x.permute(0, *(d + 1 for d in order)).is_contiguous() else dims


def _flat_state(state: NeuronState | None, shape: torch.Size, x: torch.Tensor, where: str,
                order: list[int] | None = None):
    if state is None:  # flat zeros: nothing to reorder
        return list(initial_state((shape.numel(),), x.dtype, x.device))
    out = []
    for name, t in zip(("v", "i", "a", "r"), state):
        if t.shape != shape:
            try:
                t = t.expand(shape)
            except RuntimeError:
                raise ValueError(f"{where}: state.{name} has shape {tuple(t.shape)}, the population is {tuple(shape)}") from None
        if order is not None:
            t = t.permute(order)
        out.append(t.reshape(-1).to(torch.int32 if name == "r" else x.dtype))
    return out


def _scalars(p: NeuronParameters, dtype: torch.dtype) -> dict:
    """Kernel scalars in the tensors' dtype (float32 runs in float32, like PyTorch). Without a synaptic current
    ``alpha_syn = 0`` and without adaptation ``beta = rho = 0``: the kernels' loops are branch-free."""
    f = np.float32 if dtype == torch.float32 else np.float64
    return dict(alpha=f(p.alpha_value), alpha_syn=f(p.alpha_syn if p.has_current else 0.0), v_th=f(p.v_th),
                bias=f(p.bias), beta=f(p.beta if p.adaptive else 0.0), rho=f(p.rho if p.adaptive else 0.0),
                zr=f(1.0 if p.reset == "zero" else 0.0), one=f(1.0), code=p.surrogate.code,
                slope=f(p.surrogate.slope), width=f(p.surrogate.width))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _grad_or_zeros(g: torch.Tensor | None, like: torch.Tensor, used: bool = True) -> np.ndarray:
    """The incoming gradient as an array (zeros when absent or when the state passes through the kernel)."""
    return np.zeros(like.shape, like.numpy().dtype) if g is None or not used else _np(g)


def _passthrough(kernel_out: np.ndarray, initial: torch.Tensor, used: bool) -> torch.Tensor:
    """A state the kernel does not evolve (no current / no adaptation) is the initial one, as in ``neuron_step``."""
    return torch.from_numpy(kernel_out) if used else initial.detach().clone()


def _alloc_saved(xn: np.ndarray, p: NeuronParameters):
    one = (1,) * xn.ndim
    aprev = buffers.empty_like(xn) if p.adaptive else np.empty(one, xn.dtype)
    refr = buffers.empty(xn.shape, np.uint8) if p.refractory_steps else np.empty(one, np.uint8)
    return buffers.empty_like(xn), buffers.empty_like(xn), aprev, refr


class _SequenceFunction(torch.autograd.Function):
    """x (T, M) -> spikes (T, M) and the final state, forward and backward in ``spikes.kernels.numba_neuron``."""

    @staticmethod
    def forward(ctx, x, alpha_t, v0, i0, a0, r0, p: NeuronParameters):  # type: ignore[override]
        from spikes.kernels import numba_neuron as K

        c = _scalars(p, x.dtype)
        xn = _np(x)
        m = xn.shape[1]
        ctx.block = block = K.block_size(m, kernels.set_threads())
        s, u, aprev, refr = _alloc_saved(xn, p)
        v_t, i_t, a_t = np.empty(m, xn.dtype), np.empty(m, xn.dtype), np.empty(m, xn.dtype)
        r_t = np.empty(m, np.int32)
        zeros = np.zeros(m, xn.dtype)
        K.sequence_forward(block, xn, _np(v0), _np(i0) if p.has_current else zeros, _np(a0) if p.adaptive else zeros, _np(r0),
                           c["alpha"], c["alpha_syn"], c["v_th"], c["bias"], c["beta"], c["rho"],
                           int(p.refractory_steps), c["zr"], c["one"], p.adaptive, s, u, aprev, refr, v_t, i_t, a_t, r_t)
        ctx.p = p
        ctx.set_materialize_grads(False)  # unused outputs (often the final state) send None, not zeros
        ctx.alpha_is_tensor = alpha_t is not None
        ctx.save_for_backward(*(torch.from_numpy(a) for a in (u, s, aprev, refr)), v0)
        out_r = torch.from_numpy(r_t)
        ctx.mark_non_differentiable(out_r)
        return (torch.from_numpy(s), torch.from_numpy(v_t), _passthrough(i_t, i0, p.has_current),
                _passthrough(a_t, a0, p.adaptive), out_r)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_v, g_i, g_a, _g_r):  # type: ignore[override]
        from spikes.kernels import numba_neuron as K

        kernels.set_threads()
        p: NeuronParameters = ctx.p
        u, s, aprev, refr, v0 = ctx.saved_tensors
        c = _scalars(p, u.dtype)
        t_steps, m = u.shape
        gs = _grad_or_zeros(g_s, u)
        gv_t = _grad_or_zeros(g_v, v0)
        gi_t, ga_t = _grad_or_zeros(g_i, v0, p.has_current), _grad_or_zeros(g_a, v0, p.adaptive)
        gx = buffers.empty((t_steps, m), gs.dtype)
        gv0, gi0, ga0 = (np.empty(m, gx.dtype) for _ in range(3))
        parts = np.zeros(-(-m // ctx.block), np.float64)
        need_galpha = ctx.alpha_is_tensor and ctx.needs_input_grad[1]
        K.sequence_backward(ctx.block, gs, gv_t, gi_t, ga_t, _np(u), _np(s), _np(aprev), _np(refr), _np(v0),
                            c["alpha"], c["alpha_syn"], c["v_th"], c["beta"], c["rho"], p.refractory_steps > 0,
                            c["zr"], c["one"], p.adaptive, c["code"], c["slope"], c["width"], need_galpha,
                            gx, gv0, gi0, ga0, parts)
        g_alpha = torch.tensor(parts.sum(), dtype=p.alpha.dtype).reshape(p.alpha.shape) if need_galpha else None
        g_i0 = torch.from_numpy(gi0) if p.has_current else g_i
        g_a0 = torch.from_numpy(ga0) if p.adaptive else g_a
        return torch.from_numpy(gx), g_alpha, torch.from_numpy(gv0), g_i0, g_a0, None, None


class _RecurrentFunction(torch.autograd.Function):
    """x (T, B, N), w_rec (N, N) -> spikes (T, B, N) and the final state (``spikes.kernels.numba_neuron``)."""

    @staticmethod
    def forward(ctx, x, w_rec, s0, alpha_t, v0, i0, a0, r0, p: NeuronParameters):  # type: ignore[override]
        from spikes.kernels import numba_neuron as K

        kernels.set_threads()
        c = _scalars(p, x.dtype)
        xn = _np(x)
        s, u, aprev, refr = _alloc_saved(xn, p)
        shape = xn.shape[1:]
        v_t, i_t, a_t = np.empty(shape, xn.dtype), np.empty(shape, xn.dtype), np.empty(shape, xn.dtype)
        r_t = np.empty(shape, np.int32)
        zeros = np.zeros(shape, xn.dtype)
        K.recurrent_forward(xn, _np(w_rec.t()), _np(s0), _np(v0), _np(i0) if p.has_current else zeros,
                            _np(a0) if p.adaptive else zeros, _np(r0), c["alpha"], c["alpha_syn"], c["v_th"], c["bias"],
                            c["beta"], c["rho"], int(p.refractory_steps), c["zr"], c["one"], p.adaptive,
                            s, u, aprev, refr, v_t, i_t, a_t, r_t)
        ctx.p = p
        ctx.set_materialize_grads(False)  # unused outputs (often the final state) send None, not zeros
        ctx.alpha_is_tensor = alpha_t is not None
        ctx.save_for_backward(*(torch.from_numpy(a) for a in (u, s, aprev, refr)), v0, s0, w_rec)
        out_r = torch.from_numpy(r_t)
        ctx.mark_non_differentiable(out_r)
        return (torch.from_numpy(s), torch.from_numpy(v_t), _passthrough(i_t, i0, p.has_current),
                _passthrough(a_t, a0, p.adaptive), out_r)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_v, g_i, g_a, _g_r):  # type: ignore[override]
        from spikes.kernels import numba_neuron as K

        n_chunks = kernels.set_threads()
        p: NeuronParameters = ctx.p
        u, s, aprev, refr, v0, s0, w_rec = ctx.saved_tensors
        c = _scalars(p, u.dtype)
        t_steps, b, n = u.shape
        gs = _grad_or_zeros(g_s, u)
        gv_t = _grad_or_zeros(g_v, v0)
        gi_t, ga_t = _grad_or_zeros(g_i, v0, p.has_current), _grad_or_zeros(g_a, v0, p.adaptive)
        dt = gs.dtype
        gx = buffers.empty((t_steps, b, n), dt)
        gv0, gi0, ga0, gs0 = (np.empty((b, n), dt) for _ in range(4))
        gw_parts = np.zeros((min(n_chunks, b), n, n), dt)
        parts = np.zeros(gw_parts.shape[0], np.float64)
        need_galpha = ctx.alpha_is_tensor and ctx.needs_input_grad[3]
        K.recurrent_backward(gs, gv_t, gi_t, ga_t, _np(u), _np(s), _np(aprev), _np(refr), _np(v0), _np(s0), _np(w_rec),
                             c["alpha"], c["alpha_syn"], c["v_th"], c["beta"], c["rho"], p.refractory_steps > 0,
                             c["zr"], c["one"], p.adaptive, c["code"], c["slope"], c["width"], need_galpha,
                             gx, gv0, gi0, ga0, gs0, gw_parts, parts)
        g_w = torch.from_numpy(gw_parts.sum(0).T.copy()) if ctx.needs_input_grad[1] else None
        g_alpha = torch.tensor(parts.sum(), dtype=p.alpha.dtype).reshape(p.alpha.shape) if need_galpha else None
        g_i0 = torch.from_numpy(gi0) if p.has_current else g_i
        g_a0 = torch.from_numpy(ga0) if p.adaptive else g_a
        return (torch.from_numpy(gx), g_w, torch.from_numpy(gs0), g_alpha, torch.from_numpy(gv0), g_i0, g_a0,
                None, None)
