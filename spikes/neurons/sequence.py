"""Whole-sequence execution of a population: ``x (T, B, ...) -> spikes (T, B, ...)``.

``run_sequence`` and ``run_recurrent`` run the recurrence of ``spikes.neurons.dynamics`` over all steps in
one compiled loop (``spikes.kernels``) wrapped in a ``torch.autograd.Function`` whose backward is the
adjoint loop: nothing per step goes through autograd, and only the pre-reset membrane and the spikes are
kept for backward. Spikes are identical to the per-step reference (``*_reference``, a loop of
``neuron_step`` over ``x.unbind(0)``); gradients agree up to float summation order.

CUDA tensors run the Triton kernels of ``spikes.kernels.triton_neuron`` (same equations, same autograd
contract; ``run_sequence_triton`` / ``run_recurrent_triton``), CPU tensors the numba kernels.
The reference loop is used, explicitly, when no kernel can run: ``fast_path_unsupported`` gives the
reason (``SPIKES_REFERENCE=1``, a device other than CPU and CUDA, triton missing, a dtype other than
float32/float64, per-neuron parameters).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from spikes import kernels
from spikes.kernels import buffers
from spikes.kernels import numba_neuron as K
from spikes.neurons.dynamics import NeuronParameters, NeuronState, PerNeuronParameters, neuron_step

try:  # triton ships with torch's Linux wheels; without it CUDA input runs the reference loop
    from spikes.kernels import triton_neuron as TK
    _TRITON_MISSING = None
except ImportError as _exc:  # pragma: no cover - depends on the install
    TK = None
    _TRITON_MISSING = f"triton is not installed ({_exc})"


def run_sequence_reference(x: torch.Tensor, p: NeuronParameters,
                           state: NeuronState | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Per-step loop of ``neuron_step`` (autograd through every step)."""
    spikes = []
    for x_t in x.unbind(0):
        s, state = neuron_step(x_t, state, p)
        spikes.append(s)
    return torch.stack(spikes), state


Feedback = Callable[[], "torch.Tensor | None"]


class _FeedbackMatmul(torch.autograd.Function):
    """``y = s W^T`` whose backward sends ``ds = dy . B`` with ``B = feedback()`` read at backward time (None: W,
    backprop); ``dW = dy^T s`` either way (learning without weight transport, :mod:`spikes.layers.feedback`)."""

    @staticmethod
    def forward(ctx, s, w, feedback):  # type: ignore[override]
        ctx.save_for_backward(s, w)
        ctx.feedback = feedback
        return s @ w.t()

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        s, w = ctx.saved_tensors
        b = ctx.feedback()
        g_s = g @ (w if b is None else b.to(g.dtype)) if ctx.needs_input_grad[0] else None
        g_w = g.reshape(-1, g.shape[-1]).t() @ s.reshape(-1, s.shape[-1]) if ctx.needs_input_grad[1] else None
        return g_s, g_w, None


def run_recurrent_reference(x: torch.Tensor, w_rec: torch.Tensor, p: NeuronParameters,
                            state: NeuronState | None = None, s0: torch.Tensor | None = None,
                            feedback: Feedback | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Per-step loop: step t receives ``x[t] + s[t-1] @ w_rec.T`` (backward through ``feedback()`` when given)."""
    spikes = []
    s = s0 if s0 is not None else torch.zeros_like(x[0])
    for x_t in x.unbind(0):
        rec = s @ w_rec.t() if feedback is None else _FeedbackMatmul.apply(s, w_rec, feedback)
        s, state = neuron_step(x_t + rec, state, p)
        spikes.append(s)
    return torch.stack(spikes), state


def fast_path_unsupported(x: torch.Tensor, p: NeuronParameters) -> str | None:
    """Why the compiled kernel cannot run this input (None when it can)."""
    reason = kernels.unavailable_reason()
    if reason:
        return reason
    if x.device.type not in ("cpu", "cuda"):
        return f"the compiled kernels run on CPU (numba) and CUDA (Triton), input is on {x.device}"
    if x.device.type == "cuda" and _TRITON_MISSING:
        return _TRITON_MISSING
    if x.dtype not in (torch.float32, torch.float64):
        return f"the compiled kernels take float32/float64, input is {x.dtype}"
    if isinstance(p.alpha, torch.Tensor) and p.alpha.device != x.device:
        return f"alpha is on {p.alpha.device}, input on {x.device}"
    if isinstance(p, PerNeuronParameters):
        return "the compiled kernels take one value per population, these parameters are per neuron"
    return None


def run_sequence(x: torch.Tensor, p: NeuronParameters, state: NeuronState | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Run the population over time: ``x`` is the input current, time first ``(T, B, ...)``."""
    if x.dim() < 2:
        raise ValueError(f"run_sequence needs input of shape (T, B, ...), got {tuple(x.shape)}")
    if fast_path_unsupported(x, p) is not None:
        return run_sequence_reference(x, p, state)
    if _backend(x) == "triton":
        return run_sequence_triton(x, p, state)
    t_steps, shape = x.shape[0], x.shape[1:]
    order = _memory_order(x)  # neurons in x's memory order: no copy for e.g. channels-last input
    inverse = [order.index(d) for d in range(len(order))]
    xm = x.permute(0, *(d + 1 for d in order))
    v0, i0, a0, r0 = _flat_state(state, shape, x.dtype, "run_sequence", order)
    alpha_t = p.alpha if isinstance(p.alpha, torch.Tensor) else None
    s, v, i, a, r = _SequenceFunction.apply(xm.reshape(t_steps, -1), alpha_t, v0, i0, a0, r0, p)
    back = [0, *(d + 1 for d in inverse)]
    s = s.reshape(xm.shape).permute(back)
    return s, NeuronState(*(t.reshape(xm.shape[1:]).permute(inverse) for t in (v, i, a, r)))


def run_recurrent(x: torch.Tensor, w_rec: torch.Tensor, p: NeuronParameters, state: NeuronState | None = None,
                  s0: torch.Tensor | None = None, feedback: Feedback | None = None) -> tuple[torch.Tensor, NeuronState]:
    """Recurrent population: step t receives ``x[t] + s[t-1] @ w_rec.T`` (``x`` is (T, B, N), ``w_rec`` (N, N), out x in).

    Forward adds only the columns of ``w_rec`` of the neurons that spiked; backward runs the adjoint
    recurrence in the same compiled loop and accumulates ``dL/dw_rec`` from the active neurons only.
    ``feedback``: a function called at backward time; when it returns a matrix B (w_rec's shape) the adjoint
    recurrence sends ``g[t] . B`` back to ``s[t-1]`` instead of ``g[t] . W_rec`` (dL/dw_rec unchanged).
    """
    if x.dim() != 3:
        raise ValueError(f"run_recurrent needs input of shape (T, B, N), got {tuple(x.shape)}")
    _check_recurrent(x.shape, w_rec, s0)
    if fast_path_unsupported(x, p) is not None or w_rec.device != x.device:
        return run_recurrent_reference(x, w_rec, p, state, s0, feedback)
    if _backend(x) == "triton":
        return run_recurrent_triton(x, w_rec, p, state, s0, feedback)
    return _run_recurrent(x, None, None, None, w_rec, p, state, s0, x.shape, feedback=feedback)


def run_recurrent_events(events: tuple[torch.Tensor, torch.Tensor, torch.Tensor], shape: tuple[int, int],
                         w_in: torch.Tensor, b_in: torch.Tensor | None, w_rec: torch.Tensor, p: NeuronParameters,
                         state: NeuronState | None = None, s0: torch.Tensor | None = None,
                         feedback: Feedback | None = None) -> tuple[torch.Tensor, NeuronState]:
    """``run_recurrent(x @ w_in.T + b_in, w_rec, ..., feedback)`` for a sparse input ``x`` (T, B, K) given as the CSR
    ``events = (offsets, cols, values)`` of its T*B rows (``EventLinear.events``; ``shape`` = (T, B)).

    The input projection is summed from the columns of ``w_in`` of the active inputs inside the recurrent
    loop, and backward accumulates ``dL/dw_in`` and ``dL/db_in`` there too: the input current (T, B, N) and its
    gradient are never stored. ``x`` gets no gradient (as ``EventLinear``'s event path). Needs the kernels; with
    ``w_in`` on a GPU the current is built densely (``_dense_current``) and run by ``run_recurrent``.
    """
    n = w_in.shape[0]
    t_steps, batch = shape
    if events[0].numel() != t_steps * batch + 1:
        raise ValueError(f"run_recurrent_events: events index {events[0].numel() - 1} rows, shape {tuple(shape)} has "
                         f"{t_steps * batch}")
    _check_recurrent((t_steps, batch, n), w_rec, s0)
    if _backend(w_in) == "triton":
        return run_recurrent(_dense_current(events, shape, w_in, b_in), w_rec, p, state, s0, feedback)
    return _run_recurrent(None, events, w_in, b_in, w_rec, p, state, s0, (t_steps, batch, n), w_in.dtype, feedback)


def _check_recurrent(shape, w_rec: torch.Tensor, s0: torch.Tensor | None) -> None:
    n = shape[2]
    if w_rec.shape != (n, n):
        raise ValueError(f"run_recurrent: w_rec must be ({n}, {n}) for {n} neurons, got {tuple(w_rec.shape)}")
    if s0 is not None and s0.shape != tuple(shape[1:]):
        raise ValueError(f"run_recurrent: s0 must have shape {tuple(shape[1:])}, got {tuple(s0.shape)}")


def _run_recurrent(x: torch.Tensor | None, events, w_in: torch.Tensor | None, b_in: torch.Tensor | None,
                   w_rec: torch.Tensor, p: NeuronParameters, state: NeuronState | None, s0: torch.Tensor | None,
                   full_shape: tuple[int, int, int], dtype: torch.dtype | None = None,
                   feedback: Feedback | None = None) -> tuple[torch.Tensor, NeuronState]:
    """The compiled recurrence for a dense current ``x`` or, with ``events``, the fused input projection."""
    dtype = x.dtype if x is not None else dtype
    shape = torch.Size(full_shape[1:])
    v0, i0, a0, r0 = _flat_state(state, shape, dtype, "run_recurrent")
    v0, i0, a0, r0 = (t.reshape(shape) for t in (v0, i0, a0, r0))
    s0 = torch.zeros(shape, dtype=dtype) if s0 is None else s0.to(dtype)
    alpha_t = p.alpha if isinstance(p.alpha, torch.Tensor) else None
    if x is None:
        x = torch.empty((0, 0, 0), dtype=dtype)
    s, v, i, a, r = _RecurrentFunction.apply(x, w_rec.to(dtype), s0, alpha_t, v0, i0, a0, r0, w_in, b_in, p,
                                             events, tuple(full_shape), feedback)
    return s, NeuronState(v, i, a, r)


def _backend(x: torch.Tensor) -> str:
    """Which kernels run a tensor the fast path takes: "numba" on the CPU, "triton" elsewhere (CUDA)."""
    return "numba" if x.device.type == "cpu" else "triton"


def _triton_config(p: NeuronParameters) -> "TK.Config":
    c1, c2 = K.surrogate_constants(p.surrogate.code, float(p.surrogate.slope), float(p.surrogate.width))
    return TK.Config(alpha=p.alpha_value, alpha_syn=p.alpha_syn if p.has_current else 0.0, v_th=float(p.v_th),
                     bias=float(p.bias), beta=p.beta if p.adaptive else 0.0, rho=p.rho if p.adaptive else 0.0,
                     refractory_steps=int(p.refractory_steps), zero_reset=p.reset == "zero", code=p.surrogate.code,
                     c1=c1, c2=c2)


def run_sequence_triton(x: torch.Tensor, p: NeuronParameters,
                        state: NeuronState | None = None) -> tuple[torch.Tensor, NeuronState]:
    """``run_sequence`` in the Triton kernels, on the device of ``x`` (CUDA; CPU tensors only under
    ``TRITON_INTERPRET=1``, as the tests run them). Any dense layout with time outermost is kept."""
    t_steps, shape = x.shape[0], x.shape[1:]
    order = _memory_order(x)
    inverse = [order.index(d) for d in range(len(order))]
    xm = x.permute(0, *(d + 1 for d in order))
    v0, i0, a0, r0 = _flat_state(state, shape, x.dtype, "run_sequence", order, device=x.device)
    alpha_t = p.alpha if isinstance(p.alpha, torch.Tensor) else None
    s, v, i, a, r = TK.SequenceFunction.apply(xm.reshape(t_steps, -1), alpha_t, v0.contiguous(), i0.contiguous(),
                                              a0.contiguous(), r0.contiguous(), _triton_config(p))
    s = s.reshape(xm.shape).permute([0, *(d + 1 for d in inverse)])
    return s, NeuronState(*(t.reshape(xm.shape[1:]).permute(inverse) for t in (v, i, a, r)))


def run_recurrent_triton(x: torch.Tensor, w_rec: torch.Tensor, p: NeuronParameters, state: NeuronState | None = None,
                         s0: torch.Tensor | None = None,
                         feedback: Feedback | None = None) -> tuple[torch.Tensor, NeuronState]:
    """``run_recurrent`` in the Triton kernels (cuBLAS for ``s[t-1] @ w_rec.T``), on the device of ``x``."""
    shape = x.shape[1:]
    v0, i0, a0, r0 = (t.reshape(shape).contiguous()
                      for t in _flat_state(state, shape, x.dtype, "run_recurrent", device=x.device))
    s0 = torch.zeros(shape, dtype=x.dtype, device=x.device) if s0 is None else s0.to(x.dtype)
    alpha_t = p.alpha if isinstance(p.alpha, torch.Tensor) else None
    s, v, i, a, r = TK.RecurrentFunction.apply(x, w_rec.to(x.dtype), s0, alpha_t, v0, i0, a0, r0, _triton_config(p),
                                               feedback)
    return s, NeuronState(v, i, a, r)


def _dense_current(events, shape: tuple[int, int], w_in: torch.Tensor, b_in: torch.Tensor | None) -> torch.Tensor:
    """``x @ w_in.T + b_in`` (T, B, N) for the CSR input ``events`` of ``run_recurrent_events``, on w_in's device
    (autograd gives dL/dw_in and dL/db_in; x gets none)."""
    offsets, cols, vals = (t.to(w_in.device) for t in events)
    rows = torch.repeat_interleave(torch.arange(offsets.numel() - 1, device=w_in.device), offsets.diff())
    x = torch.zeros(offsets.numel() - 1, w_in.shape[1], dtype=w_in.dtype, device=w_in.device)
    x[rows, cols] = vals.to(w_in.dtype)
    return torch.nn.functional.linear(x, w_in, b_in).reshape(*shape, w_in.shape[0])


# ----------------------------------------------------------------------------------------------------------

def _memory_order(x: torch.Tensor) -> list[int]:
    """The neuron dimensions of ``x`` (time first), outermost first in memory: ``x.permute(0, *(d + 1 ...))`` is
    contiguous when x is dense in any layout with time outermost (channels-last conv output); else 0, 1, ..."""
    dims = list(range(x.dim() - 1))
    if x.is_contiguous() or x.stride(0) != x[0].numel():
        return dims
    order = sorted(dims, key=lambda d: -x.stride(d + 1))
    return order if x.permute(0, *(d + 1 for d in order)).is_contiguous() else dims


def _flat_state(state: NeuronState | None, shape: torch.Size, dtype: torch.dtype, where: str,
                order: list[int] | None = None, device: torch.device | None = None):
    if state is None and device is not None and device.type != "cpu":
        n = shape.numel()
        zeros = torch.zeros(n, dtype=dtype, device=device)
        return [zeros, zeros, zeros, torch.zeros(n, dtype=torch.int32, device=device)]
    if state is None:  # flat zeros: nothing to reorder
        n = shape.numel()
        zeros = torch.from_numpy(buffers.zeros(n, np.float32 if dtype == torch.float32 else np.float64))
        return [zeros, zeros, zeros, torch.from_numpy(buffers.zeros(n, np.int32))]
    out = []
    for name, t in zip(("v", "i", "a", "r"), state):
        if t.shape != shape:
            try:
                t = t.expand(shape)
            except RuntimeError:
                raise ValueError(f"{where}: state.{name} has shape {tuple(t.shape)}, the population is {tuple(shape)}") from None
        if order is not None:
            t = t.permute(order)
        out.append(t.reshape(-1).to(torch.int32 if name == "r" else dtype))
    return out


def _scalars(p: NeuronParameters, dtype: torch.dtype) -> dict:
    """Kernel scalars in the tensors' dtype (float32 runs in float32, like PyTorch). Without a synaptic current
    ``alpha_syn = 0`` and without adaptation ``beta = rho = 0``: the kernels' loops are branch-free."""
    f = np.float32 if dtype == torch.float32 else np.float64
    c1, c2 = K.surrogate_constants(p.surrogate.code, float(p.surrogate.slope), float(p.surrogate.width))
    return dict(alpha=f(p.alpha_value), alpha_syn=f(p.alpha_syn if p.has_current else 0.0), v_th=f(p.v_th),
                bias=f(p.bias), beta=f(p.beta if p.adaptive else 0.0), rho=f(p.rho if p.adaptive else 0.0),
                zr=f(1.0 if p.reset == "zero" else 0.0), one=f(1.0), code=p.surrogate.code, c1=f(c1), c2=f(c2))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _grad_or_zeros(g: torch.Tensor | None, like: torch.Tensor, used: bool = True) -> np.ndarray:
    """The incoming gradient as an array (zeros when absent or when the state passes through the kernel)."""
    return buffers.zeros(like.shape, like.numpy().dtype) if g is None or not used else _np(g)


def _passthrough(kernel_out: np.ndarray, initial: torch.Tensor, used: bool) -> torch.Tensor:
    """A state the kernel does not evolve (no current / no adaptation) is the initial one, as in ``neuron_step``
    (copied into the kernel's output array)."""
    if not used:
        np.copyto(kernel_out, initial.detach().numpy().reshape(kernel_out.shape))
    return torch.from_numpy(kernel_out)


def _alloc_saved(shape: tuple[int, ...], dtype, p: NeuronParameters):
    """Spikes, pre-reset membrane, a[t-1] and refractory mask for a sequence of ``shape`` in ``dtype``."""
    one = (1,) * len(shape)
    aprev = buffers.empty(shape, dtype) if p.adaptive else np.empty(one, dtype)
    refr = buffers.empty(shape, np.uint8) if p.refractory_steps else np.empty(one, np.uint8)
    return buffers.empty(shape, dtype), buffers.empty(shape, dtype), aprev, refr


class _SequenceFunction(torch.autograd.Function):
    """x (T, M) -> spikes (T, M) and the final state, forward and backward in ``spikes.kernels.numba_neuron``."""

    @staticmethod
    def forward(ctx, x, alpha_t, v0, i0, a0, r0, p: NeuronParameters):  # type: ignore[override]
        c = _scalars(p, x.dtype)
        xn = _np(x)
        m = xn.shape[1]
        ctx.block = block = K.block_size(m, kernels.set_threads())
        s, u, aprev, refr = _alloc_saved(xn.shape, xn.dtype, p)
        v_t, i_t, a_t = (buffers.empty(m, xn.dtype) for _ in range(3))
        r_t = buffers.empty(m, np.int32)
        zeros = buffers.zeros(m, xn.dtype)
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
        kernels.set_threads()
        p: NeuronParameters = ctx.p
        u, s, aprev, refr, v0 = ctx.saved_tensors
        c = _scalars(p, u.dtype)
        t_steps, m = u.shape
        gs = _grad_or_zeros(g_s, u)
        gv_t = _grad_or_zeros(g_v, v0)
        gi_t, ga_t = _grad_or_zeros(g_i, v0, p.has_current), _grad_or_zeros(g_a, v0, p.adaptive)
        gx = buffers.empty((t_steps, m), gs.dtype)
        gv0, gi0, ga0 = (buffers.empty(m, gx.dtype) for _ in range(3))
        parts = np.zeros(-(-m // ctx.block), np.float64)
        need_galpha = ctx.alpha_is_tensor and ctx.needs_input_grad[1]
        K.sequence_backward(ctx.block, gs, gv_t, gi_t, ga_t, _np(u), _np(s), _np(aprev), _np(refr), _np(v0),
                            c["alpha"], c["alpha_syn"], c["v_th"], c["beta"], c["rho"], p.refractory_steps > 0,
                            c["zr"], c["one"], p.adaptive, c["code"], c["c1"], c["c2"], need_galpha,
                            gx, gv0, gi0, ga0, parts)
        g_alpha = torch.tensor(parts.sum(), dtype=p.alpha.dtype).reshape(p.alpha.shape) if need_galpha else None
        g_i0 = torch.from_numpy(gi0) if p.has_current else g_i
        g_a0 = torch.from_numpy(ga0) if p.adaptive else g_a
        return torch.from_numpy(gx), g_alpha, torch.from_numpy(gv0), g_i0, g_a0, None, None


class _RecurrentFunction(torch.autograd.Function):
    """x (T, B, N), w_rec (N, N) -> spikes (T, B, N) and the final state (``spikes.kernels.numba_neuron``). With
    ``events`` (CSR input) the current is ``b_in + W_in x`` built inside the kernel and x is an empty placeholder."""

    @staticmethod
    def forward(ctx, x, w_rec, s0, alpha_t, v0, i0, a0, r0, w_in, b_in, p: NeuronParameters, events,
                full_shape, feedback=None):  # type: ignore[override]
        kernels.set_threads()
        dtype = w_rec.dtype
        c = _scalars(p, dtype)
        shape = tuple(full_shape[1:])
        fdt = np.float32 if dtype == torch.float32 else np.float64
        xn, offsets, cols, vals, w_in_t, b = _recurrent_inputs(x, events, w_in, b_in, shape[1], fdt)
        s, u, aprev, refr = _alloc_saved(tuple(full_shape), fdt, p)
        v_t, i_t, a_t = (buffers.empty(shape, fdt) for _ in range(3))
        r_t = buffers.empty(shape, np.int32)
        zeros = buffers.zeros(shape, fdt)
        K.recurrent_forward(xn, events is not None, offsets, cols, vals, w_in_t, b, _np(w_rec.t()), _np(s0), _np(v0),
                            _np(i0) if p.has_current else zeros, _np(a0) if p.adaptive else zeros, _np(r0),
                            c["alpha"], c["alpha_syn"], c["v_th"], c["bias"], c["beta"], c["rho"],
                            int(p.refractory_steps), c["zr"], c["one"], p.adaptive, s, u, aprev, refr, v_t, i_t, a_t, r_t)
        ctx.p = p
        ctx.events = events
        ctx.feedback = feedback
        ctx.has_bias = b_in is not None
        ctx.set_materialize_grads(False)  # unused outputs (often the final state) send None, not zeros
        ctx.alpha_is_tensor = alpha_t is not None
        ctx.save_for_backward(*(torch.from_numpy(a) for a in (u, s, aprev, refr)), v0, s0, w_rec, w_in)
        out_r = torch.from_numpy(r_t)
        ctx.mark_non_differentiable(out_r)
        return (torch.from_numpy(s), torch.from_numpy(v_t), _passthrough(i_t, i0, p.has_current),
                _passthrough(a_t, a0, p.adaptive), out_r)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_v, g_i, g_a, _g_r):  # type: ignore[override]
        n_chunks = kernels.set_threads()
        p: NeuronParameters = ctx.p
        u, s, aprev, refr, v0, s0, w_rec, w_in = ctx.saved_tensors
        c = _scalars(p, u.dtype)
        t_steps, b, n = u.shape
        gs = _grad_or_zeros(g_s, u)
        gv_t = _grad_or_zeros(g_v, v0)
        gi_t, ga_t = _grad_or_zeros(g_i, v0, p.has_current), _grad_or_zeros(g_a, v0, p.adaptive)
        dt = gs.dtype
        events = ctx.events
        gx = buffers.empty((t_steps, b, n) if events is None else (1, 1, 1), dt)
        gv0, gi0, ga0, gs0 = (buffers.empty((b, n), dt) for _ in range(4))
        chunks = min(n_chunks, b)
        gw_parts = np.zeros((chunks, n, n), dt)
        k_in = w_in.shape[1] if events is not None else 1
        gw_in_parts = np.zeros((chunks, k_in, n) if events is not None else (1, 1, 1), dt)
        gb_parts = np.zeros((chunks, n) if events is not None else (1, 1), np.float64)
        parts = np.zeros(chunks, np.float64)
        need_galpha = ctx.alpha_is_tensor and ctx.needs_input_grad[3]
        offsets, cols, vals = _csr_arrays(events, dt)
        b_rec = ctx.feedback() if ctx.feedback is not None else None     # the kernel uses it only to send g back
        w_back = w_rec if b_rec is None else b_rec.detach().to(w_rec.dtype).contiguous()
        with kernels.single_threaded_blas():
            K.recurrent_backward(gs, gv_t, gi_t, ga_t, _np(u), _np(s), _np(aprev), _np(refr), _np(v0), _np(s0), _np(w_back),
                                 events is not None, offsets, cols, vals,
                                 c["alpha"], c["alpha_syn"], c["v_th"], c["beta"], c["rho"], p.refractory_steps > 0,
                                 c["zr"], c["one"], p.adaptive, c["code"], c["c1"], c["c2"], need_galpha,
                                 gx, gv0, gi0, ga0, gs0, gw_parts, gw_in_parts, gb_parts, parts)
        g_w = torch.from_numpy(gw_parts.sum(0).T.copy()) if ctx.needs_input_grad[1] else None
        g_alpha = torch.tensor(parts.sum(), dtype=p.alpha.dtype).reshape(p.alpha.shape) if need_galpha else None
        g_i0 = torch.from_numpy(gi0) if p.has_current else g_i
        g_a0 = torch.from_numpy(ga0) if p.adaptive else g_a
        g_x = torch.from_numpy(gx) if events is None else None
        g_w_in = torch.from_numpy(gw_in_parts.sum(0).T.copy()) if events is not None and ctx.needs_input_grad[8] else None
        g_b_in = (torch.from_numpy(gb_parts.sum(0).astype(dt)) if events is not None and ctx.has_bias
                  and ctx.needs_input_grad[9] else None)
        return (g_x, g_w, torch.from_numpy(gs0), g_alpha, torch.from_numpy(gv0), g_i0, g_a0, None, g_w_in, g_b_in,
                None, None, None, None)


def _csr_arrays(events, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if events is None:
        return np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, dtype)
    offsets, cols, vals = events
    return offsets.numpy(), cols.numpy(), vals.numpy().astype(dtype, copy=False)


def _recurrent_inputs(x, events, w_in, b_in, n, dtype):
    """Kernel arguments for the input: the dense current, or the CSR input with W_in.T and the bias."""
    offsets, cols, vals = _csr_arrays(events, dtype)
    if events is None:
        return _np(x), offsets, cols, vals, np.zeros((1, 1), dtype), np.zeros(1, dtype)
    w_in_t = w_in.detach().t().contiguous().numpy()
    b = b_in.detach().numpy() if b_in is not None else np.zeros(n, dtype)
    return np.zeros((1, 1, 1), dtype), offsets, cols, vals, w_in_t, b
