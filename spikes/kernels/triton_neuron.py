"""Triton kernels for the integrate-and-fire family on a GPU: the sequence recurrence and the recurrent LIF.

The equations are those of ``spikes.neurons.dynamics`` and of the numba kernels (``numba_neuron``), written with
the per-step reference's operations in its order, so that float32 runs in float32 and the spikes are identical::

    i = alpha_syn i + x                (no synaptic current: i = x)
    u = alpha v + i (+ bias)           (u = v while refractory)
    z = u - (v_th + beta a)            s = H(z) (0 while refractory)
    v = u - v_th s  |  u (1 - s)       a = rho a + s

and backward the adjoint recurrence (reverse time) with the surrogate ``h = ds/dz``::

    gs = dL/ds[t] + ga - v_th gv (subtract) | - u gv (zero);   gu = gv | gv (1 - s)
    gz = gs h (0 while refractory);  gu += gz;  ga' = rho ga - beta gz
    gx[t] = gi + gu (refractory: gi);  gi' = alpha_syn gx[t];  gv' = alpha gu (refractory: gu)
    dL/dalpha += gu v[t-1] (0 while refractory)

Launches on a GPU pass ``enable_fp_fusion=False``: a fused multiply-add rounds ``alpha v + i`` once where the
reference (two torch kernels) rounds twice, and a spike at the threshold could flip.

``sequence_forward`` / ``sequence_backward``: one program owns a block of neurons and runs all T steps (the
state stays in registers; the only memory traffic is x, s and u per step). ``recurrent_step_forward`` /
``recurrent_step_backward``: one step of a recurrent population, launched once per step after cuBLAS's product
(see ``RecurrentFunction``). Under ``TRITON_INTERPRET=1`` (set before triton is imported) the same kernels run
on CPU tensors in numpy: that is how CI tests them on a machine without a GPU.
"""
from typing import Callable, NamedTuple

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

BLOCK = 256  # neurons per program: 4 warps, a 16 x 1024 population fills 64 programs per 16 k neurons


class Config(NamedTuple):
    """The population's constants (``NeuronParameters`` without the tensor alpha), as the kernels take them.
    ``code`` is the surrogate's index (``spikes.surrogates.KINDS``) and ``c1, c2`` its constants
    (``numba_neuron.surrogate_constants``)."""

    alpha: float
    alpha_syn: float
    v_th: float
    bias: float
    beta: float
    rho: float
    refractory_steps: int
    zero_reset: bool
    code: int
    c1: float
    c2: float

    @property
    def has_current(self) -> bool:
        return self.alpha_syn > 0

    @property
    def adaptive(self) -> bool:
        return self.beta > 0


def unavailable_reason(x: torch.Tensor) -> str | None:
    """Why these kernels cannot run on ``x`` (None when they can): a CUDA tensor, float32 or float64."""
    if x.device.type != "cuda":
        return f"the Triton kernels run on CUDA tensors, input is on {x.device}"
    if x.dtype not in (torch.float32, torch.float64):
        return f"the Triton kernels take float32/float64, input is {x.dtype}"
    return None


# ------------------------------------------------------------------------------------------------ device code

@triton.jit
def _surrogate(z, CODE: tl.constexpr, c1, c2):
    """h = ds/dz: atan c1 / (1 + (c2 z)^2), fast_sigmoid 1 / (1 + c1 |z|)^2, triangle c1 max(0, 1 - c2 |z|),
    straight_through c1."""
    if CODE == 0:
        q = c2 * z
        h = c1 / (1.0 + q * q)
    elif CODE == 1:
        d = 1.0 + c1 * tl.abs(z)
        h = 1.0 / (d * d)
    elif CODE == 2:
        h = c1 * tl.maximum(1.0 - c2 * tl.abs(z), 0.0)
    else:
        h = z * 0.0 + c1
    return h


@triton.jit
def _forward_step(cur, v, i, a, r, alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps,
                  HAS_CURRENT: tl.constexpr, ADAPTIVE: tl.constexpr, REFRACTORY: tl.constexpr,
                  ZERO_RESET: tl.constexpr, HAS_BIAS: tl.constexpr):
    """One step of ``neuron_step`` for a block: returns (s, u, v, i, a, r, refractory mask)."""
    if HAS_CURRENT:
        i = alpha_syn * i + cur
    else:
        i = cur
    u = alpha * v + i
    if HAS_BIAS:
        u = u + bias
    rf = r > 0
    if REFRACTORY:
        u = tl.where(rf, v, u)
    if ADAPTIVE:
        z = u - (v_th + beta * a)
    else:
        z = u - v_th
    s = (z > 0).to(u.dtype)
    if REFRACTORY:
        s = s * (1 - rf.to(u.dtype))
    if ZERO_RESET:
        v = u * (1.0 - s)
    else:
        v = u - v_th * s
    if ADAPTIVE:
        a = rho * a + s
    if REFRACTORY:
        r = tl.where(s > 0, refractory_steps, tl.maximum(r - 1, 0))
    return s, u, v, i, a, r, rf


@triton.jit
def _backward_step(g_in, u, s, aprev, rf, vprev, gv, gi, ga, acc, alpha, alpha_syn, v_th, beta, rho, c1, c2,
                   HAS_CURRENT: tl.constexpr, ADAPTIVE: tl.constexpr, REFRACTORY: tl.constexpr,
                   ZERO_RESET: tl.constexpr, CODE: tl.constexpr, NEED_GALPHA: tl.constexpr):
    """Adjoint of one step (module docstring): returns (gx, gv, gi, ga, acc)."""
    if ADAPTIVE:
        z = u - (v_th + beta * aprev)
    else:
        z = u - v_th
    h = _surrogate(z, CODE, c1, c2)
    g_s = g_in
    if ADAPTIVE:
        g_s = g_s + ga
    if ZERO_RESET:
        g_s = g_s - gv * u
        gu = gv * (1.0 - s)
    else:
        g_s = g_s - gv * v_th
        gu = gv
    gz = g_s * h
    if REFRACTORY:
        nr = 1.0 - rf.to(u.dtype)
        gz = gz * nr
    gu = gu + gz
    if ADAPTIVE:
        ga = rho * ga - beta * gz
    gin = gu
    if REFRACTORY:
        gin = gu * nr
        gv = tl.where(rf != 0, gu, alpha * gu)
    else:
        gv = alpha * gu
    if NEED_GALPHA:
        acc += gin.to(tl.float64) * vprev.to(tl.float64)
    if HAS_CURRENT:
        gx = gi + gin
        gi = alpha_syn * gx
    else:
        gx = gin
    return gx, gv, gi, ga, acc


@triton.jit
def _post_reset(u, s, v_th, ZERO_RESET: tl.constexpr):
    if ZERO_RESET:
        v = u * (1.0 - s)
    else:
        v = u - v_th * s
    return v


@triton.jit
def _constants(c_ptr):
    """alpha, alpha_syn, v_th, bias, beta, rho, c1, c2 from a tensor in the arrays' dtype (a Python float
    argument would reach the kernel as float32)."""
    return (tl.load(c_ptr), tl.load(c_ptr + 1), tl.load(c_ptr + 2), tl.load(c_ptr + 3), tl.load(c_ptr + 4),
            tl.load(c_ptr + 5), tl.load(c_ptr + 6), tl.load(c_ptr + 7))


@triton.jit
def sequence_forward(x_ptr, v0_ptr, i0_ptr, a0_ptr, r0_ptr, c_ptr, s_ptr, u_ptr, aprev_ptr, refr_ptr,
                     v_ptr, i_ptr, a_ptr, r_ptr, T, M, refractory_steps,
                     HAS_CURRENT: tl.constexpr, ADAPTIVE: tl.constexpr, REFRACTORY: tl.constexpr,
                     ZERO_RESET: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr):
    """x (T, M) -> s, u (T, M), a[t-1] and the refractory mask (T, M) when used, and the final state (M,)."""
    offs = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask = offs < M
    m64 = offs.to(tl.int64) * 0 + M  # row stride in 64 bits: T M may pass 2^31
    alpha, alpha_syn, v_th, bias, beta, rho, c1, c2 = _constants(c_ptr)
    v = tl.load(v0_ptr + offs, mask=mask)
    i = tl.load(i0_ptr + offs, mask=mask)
    a = tl.load(a0_ptr + offs, mask=mask)
    r = tl.load(r0_ptr + offs, mask=mask)
    for t in range(T):
        row = m64 * t + offs
        cur = tl.load(x_ptr + row, mask=mask)
        aprev = a
        s, u, v, i, a, r, rf = _forward_step(cur, v, i, a, r, alpha, alpha_syn, v_th, bias, beta, rho,
                                             refractory_steps, HAS_CURRENT, ADAPTIVE, REFRACTORY, ZERO_RESET,
                                             HAS_BIAS)
        tl.store(s_ptr + row, s, mask=mask)
        tl.store(u_ptr + row, u, mask=mask)
        if ADAPTIVE:
            tl.store(aprev_ptr + row, aprev, mask=mask)
        if REFRACTORY:
            tl.store(refr_ptr + row, rf.to(tl.uint8), mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    tl.store(i_ptr + offs, i, mask=mask)
    tl.store(a_ptr + offs, a, mask=mask)
    tl.store(r_ptr + offs, r, mask=mask)


@triton.jit
def sequence_backward(gs_ptr, u_ptr, s_ptr, aprev_ptr, refr_ptr, v0_ptr, c_ptr, gv_ptr, gi_ptr, ga_ptr,
                      gx_ptr, acc_ptr, T, M,
                      HAS_CURRENT: tl.constexpr, ADAPTIVE: tl.constexpr, REFRACTORY: tl.constexpr,
                      ZERO_RESET: tl.constexpr, CODE: tl.constexpr, NEED_GALPHA: tl.constexpr,
                      BLOCK_M: tl.constexpr):
    """Adjoint of ``sequence_forward``: gv, gi, ga (M,) come in as dL/d(final state) and leave as dL/d(initial
    state); writes gx (T, M) and, with NEED_GALPHA, each neuron's sum of dL/dalpha (float64) into acc."""
    offs = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask = offs < M
    m64 = offs.to(tl.int64) * 0 + M
    alpha, alpha_syn, v_th, bias, beta, rho, c1, c2 = _constants(c_ptr)
    gv = tl.load(gv_ptr + offs, mask=mask)
    gi = tl.load(gi_ptr + offs, mask=mask)
    ga = tl.load(ga_ptr + offs, mask=mask)
    acc = tl.zeros([BLOCK_M], dtype=tl.float64)
    v0 = tl.load(v0_ptr + offs, mask=mask)
    for tt in range(T):
        t = T - 1 - tt
        row = m64 * t + offs
        u = tl.load(u_ptr + row, mask=mask)
        s = tl.load(s_ptr + row, mask=mask)
        g_in = tl.load(gs_ptr + row, mask=mask)
        aprev = u
        rf = u
        vprev = u
        if ADAPTIVE:
            aprev = tl.load(aprev_ptr + row, mask=mask)
        if REFRACTORY:
            rf = tl.load(refr_ptr + row, mask=mask)
        if NEED_GALPHA:  # v[t-1] after its reset (v0 at t = 0), read branch-free
            prev = m64 * tl.maximum(t - 1, 0) + offs
            vpost = _post_reset(tl.load(u_ptr + prev, mask=mask), tl.load(s_ptr + prev, mask=mask), v_th, ZERO_RESET)
            vprev = tl.where(t > 0, vpost, v0)
        gx, gv, gi, ga, acc = _backward_step(g_in, u, s, aprev, rf, vprev, gv, gi, ga, acc, alpha, alpha_syn, v_th,
                                             beta, rho, c1, c2, HAS_CURRENT, ADAPTIVE, REFRACTORY, ZERO_RESET, CODE,
                                             NEED_GALPHA)
        tl.store(gx_ptr + row, gx, mask=mask)
    tl.store(gv_ptr + offs, gv, mask=mask)
    tl.store(gi_ptr + offs, gi, mask=mask)
    tl.store(ga_ptr + offs, ga, mask=mask)
    if NEED_GALPHA:
        tl.store(acc_ptr + offs, acc, mask=mask)


@triton.jit
def recurrent_step_forward(x_ptr, rec_ptr, c_ptr, v_ptr, i_ptr, a_ptr, r_ptr, s_ptr, prev_ptr, u_ptr, aprev_ptr,
                           refr_ptr, M, refractory_steps,
                           HAS_CURRENT: tl.constexpr, ADAPTIVE: tl.constexpr, REFRACTORY: tl.constexpr,
                           ZERO_RESET: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr):
    """Step t of a recurrent population (M = B N): input x[t] + rec (rec = s[t-1] @ W_rec^T), the state
    (v, i, a, r) updated in place; writes s[t] (also into ``prev``, the next step's matmul operand), u[t], a[t-1]
    and the refractory mask of step t."""
    offs = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask = offs < M
    alpha, alpha_syn, v_th, bias, beta, rho, c1, c2 = _constants(c_ptr)
    cur = tl.load(x_ptr + offs, mask=mask) + tl.load(rec_ptr + offs, mask=mask)
    v = tl.load(v_ptr + offs, mask=mask)
    i = tl.load(i_ptr + offs, mask=mask)
    a = tl.load(a_ptr + offs, mask=mask)
    r = tl.load(r_ptr + offs, mask=mask)
    if ADAPTIVE:
        tl.store(aprev_ptr + offs, a, mask=mask)
    s, u, v, i, a, r, rf = _forward_step(cur, v, i, a, r, alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps,
                                         HAS_CURRENT, ADAPTIVE, REFRACTORY, ZERO_RESET, HAS_BIAS)
    tl.store(s_ptr + offs, s, mask=mask)
    tl.store(prev_ptr + offs, s, mask=mask)
    tl.store(u_ptr + offs, u, mask=mask)
    if REFRACTORY:
        tl.store(refr_ptr + offs, rf.to(tl.uint8), mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    if HAS_CURRENT:
        tl.store(i_ptr + offs, i, mask=mask)
    if ADAPTIVE:
        tl.store(a_ptr + offs, a, mask=mask)
    if REFRACTORY:
        tl.store(r_ptr + offs, r, mask=mask)


@triton.jit
def recurrent_step_backward(gs_ptr, gsr_ptr, u_ptr, s_ptr, aprev_ptr, refr_ptr, uprev_ptr, sprev_ptr, c_ptr,
                            gv_ptr, gi_ptr, ga_ptr, acc_ptr, gx_ptr, M,
                            HAS_CURRENT: tl.constexpr, ADAPTIVE: tl.constexpr, REFRACTORY: tl.constexpr,
                            ZERO_RESET: tl.constexpr, CODE: tl.constexpr, NEED_GALPHA: tl.constexpr,
                            BLOCK_M: tl.constexpr):
    """Adjoint of step t: dL/ds[t] = gs[t] + gsr (gsr = gx[t+1] @ W_rec, or @ B), state gradients and the
    float64 dL/dalpha sums updated in place; writes gx[t] = dL/d(input current of step t). ``uprev, sprev``:
    u and s of step t-1 (v0 and zeros at t = 0), read only with NEED_GALPHA."""
    offs = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask = offs < M
    alpha, alpha_syn, v_th, bias, beta, rho, c1, c2 = _constants(c_ptr)
    g_in = tl.load(gs_ptr + offs, mask=mask) + tl.load(gsr_ptr + offs, mask=mask)
    u = tl.load(u_ptr + offs, mask=mask)
    s = tl.load(s_ptr + offs, mask=mask)
    gv = tl.load(gv_ptr + offs, mask=mask)
    gi = tl.load(gi_ptr + offs, mask=mask)
    ga = tl.load(ga_ptr + offs, mask=mask)
    aprev = u
    rf = u
    vprev = u
    acc = tl.zeros([BLOCK_M], dtype=tl.float64)
    if ADAPTIVE:
        aprev = tl.load(aprev_ptr + offs, mask=mask)
    if REFRACTORY:
        rf = tl.load(refr_ptr + offs, mask=mask)
    if NEED_GALPHA:
        vprev = _post_reset(tl.load(uprev_ptr + offs, mask=mask), tl.load(sprev_ptr + offs, mask=mask), v_th,
                            ZERO_RESET)
        acc = tl.load(acc_ptr + offs, mask=mask)
    gx, gv, gi, ga, acc = _backward_step(g_in, u, s, aprev, rf, vprev, gv, gi, ga, acc, alpha, alpha_syn, v_th,
                                         beta, rho, c1, c2, HAS_CURRENT, ADAPTIVE, REFRACTORY, ZERO_RESET, CODE,
                                         NEED_GALPHA)
    tl.store(gx_ptr + offs, gx, mask=mask)
    tl.store(gv_ptr + offs, gv, mask=mask)
    if HAS_CURRENT:
        tl.store(gi_ptr + offs, gi, mask=mask)
    if ADAPTIVE:
        tl.store(ga_ptr + offs, ga, mask=mask)
    if NEED_GALPHA:
        tl.store(acc_ptr + offs, acc, mask=mask)


# ------------------------------------------------------------------------------------------------ host side

def _launch(kernel, m: int, *args, **constexprs) -> None:
    if m == 0:
        return
    options = dict(BLOCK_M=BLOCK, num_warps=4)
    on_gpu = any(isinstance(a, torch.Tensor) and a.device.type == "cuda" for a in args)
    if on_gpu:
        options["enable_fp_fusion"] = False
    kernel[(triton.cdiv(m, BLOCK),)](*args, **constexprs, **options)


def _constants_tensor(c: Config, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([c.alpha, c.alpha_syn, c.v_th, c.bias, c.beta, c.rho, c.c1, c.c2],
                        dtype=like.dtype, device=like.device)


def _flags(c: Config) -> dict:
    return dict(HAS_CURRENT=c.has_current, ADAPTIVE=c.adaptive, REFRACTORY=c.refractory_steps > 0,
                ZERO_RESET=c.zero_reset)


def _saved(shape, like: torch.Tensor, c: Config):
    """Buffers for a[t-1] and the refractory mask (one element when unused)."""
    aprev = torch.empty(shape if c.adaptive else (1,), dtype=like.dtype, device=like.device)
    refr = torch.empty(shape if c.refractory_steps > 0 else (1,), dtype=torch.uint8, device=like.device)
    return aprev, refr


def _grad_or_zeros(g: torch.Tensor | None, like: torch.Tensor, used: bool = True) -> torch.Tensor:
    """The incoming gradient as a fresh contiguous buffer (the kernels update it in place), zeros when absent."""
    if g is None or not used:
        return torch.zeros_like(like, memory_format=torch.contiguous_format)
    return g.detach().to(like.dtype).contiguous().clone()


def _alpha_grad(acc: torch.Tensor, alpha_like: tuple) -> torch.Tensor:
    """dL/dalpha: the float64 per-neuron sums added up, in alpha's dtype and shape."""
    dtype, shape = alpha_like
    return acc.sum().to(dtype).reshape(shape)


class SequenceFunction(torch.autograd.Function):
    """x (T, M) -> spikes (T, M) and the final state (v, i, a, r) (M,): ``sequence_forward`` / ``_backward``.
    The initial state comes flat and contiguous; a state the population does not evolve (no current, no
    adaptation) passes through, as in ``neuron_step``."""

    @staticmethod
    def forward(ctx, x, alpha_t, v0, i0, a0, r0, c: Config):  # type: ignore[override]
        x = x.contiguous()
        t_steps, m = x.shape
        s, u = torch.empty_like(x), torch.empty_like(x)
        aprev, refr = _saved(x.shape, x, c)
        v, i, a = (torch.empty(m, dtype=x.dtype, device=x.device) for _ in range(3))
        r = torch.empty(m, dtype=torch.int32, device=x.device)
        consts = _constants_tensor(c, x)
        _launch(sequence_forward, m, x, v0, i0, a0, r0, consts, s, u, aprev, refr, v, i, a, r, t_steps, m,
                int(c.refractory_steps), HAS_BIAS=c.bias != 0, **_flags(c))
        ctx.c = c
        ctx.alpha_is_tensor = alpha_t is not None
        ctx.alpha_like = (alpha_t.dtype, alpha_t.shape) if alpha_t is not None else None
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(u, s, aprev, refr, v0, consts)
        ctx.mark_non_differentiable(r)
        i = i if c.has_current else i0.clone()
        a = a if c.adaptive else a0.clone()
        return s, v, i, a, r

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_v, g_i, g_a, _g_r):  # type: ignore[override]
        c: Config = ctx.c
        u, s, aprev, refr, v0, consts = ctx.saved_tensors
        t_steps, m = u.shape
        gs = _grad_or_zeros(g_s, u)
        gv = _grad_or_zeros(g_v, v0)
        gi, ga = _grad_or_zeros(g_i, v0, c.has_current), _grad_or_zeros(g_a, v0, c.adaptive)
        gx = torch.empty_like(u)
        need_galpha = ctx.alpha_is_tensor and ctx.needs_input_grad[1]
        acc = torch.zeros(m if need_galpha else 1, dtype=torch.float64, device=u.device)
        _launch(sequence_backward, m, gs, u, s, aprev, refr, v0, consts, gv, gi, ga, gx, acc, t_steps, m,
                CODE=c.code, NEED_GALPHA=need_galpha, **_flags(c))
        g_alpha = _alpha_grad(acc, ctx.alpha_like) if need_galpha else None
        g_i0 = gi if c.has_current else g_i
        g_a0 = ga if c.adaptive else g_a
        return gx, g_alpha, gv, g_i0, g_a0, None, None


Feedback = Callable[[], "torch.Tensor | None"]


class RecurrentFunction(torch.autograd.Function):
    """x (T, B, N), w_rec (N, N), s0 (B, N) -> spikes (T, B, N) and the final state (B, N): step t receives
    ``x[t] + s[t-1] @ w_rec^T``.

    Why one cuBLAS matmul and one Triton launch per step, not one fused kernel: every neuron of step t needs all
    of s[t-1], so a fused kernel needs a grid-wide barrier per step, which Triton does not have (a single
    program would leave all but one SM idle), while s[t-1] @ W^T, a (B, N) x (N, N) GEMM that reads W once per
    step for the whole batch, is what cuBLAS runs at memory bandwidth. The same product as the reference loop
    (``s @ w_rec.t()``) also keeps the spikes identical to it. Backward runs the same way in reverse:
    gx[t] @ W_rec (or the feedback matrix B) per step, and dL/dW_rec = sum_t gx[t]^T s[t-1] as two large
    matmuls at the end."""

    @staticmethod
    def forward(ctx, x, w_rec, s0, alpha_t, v0, i0, a0, r0, c: Config, feedback: Feedback | None):  # type: ignore[override]
        x = x.contiguous()
        t_steps, b, n = x.shape
        m = b * n
        w_t = w_rec.detach().t()
        s, u = torch.empty_like(x), torch.empty_like(x)
        aprev, refr = _saved(x.shape, x, c)
        v, i, a = (t.detach().to(x.dtype).contiguous().clone() for t in (v0, i0, a0))
        r = r0.detach().to(torch.int32).contiguous().clone()
        consts = _constants_tensor(c, x)
        flags = _flags(c)
        # s[t-1] is read from its own buffer, not the slice s[t-1]: BLAS's result can depend on the operand's
        # alignment (MKL's does), and the reference loop multiplies a freshly allocated spike tensor
        prev = torch.empty_like(x[0])
        for t in range(t_steps):
            rec = (s0.detach().to(x.dtype) if t == 0 else prev) @ w_t
            _launch(recurrent_step_forward, m, x[t], rec, consts, v, i, a, r, s[t], prev, u[t],
                    aprev[t] if c.adaptive else aprev, refr[t] if c.refractory_steps > 0 else refr, m,
                    int(c.refractory_steps), HAS_BIAS=c.bias != 0, **flags)
        ctx.c = c
        ctx.feedback = feedback
        ctx.alpha_is_tensor = alpha_t is not None
        ctx.alpha_like = (alpha_t.dtype, alpha_t.shape) if alpha_t is not None else None
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(u, s, aprev, refr, v0, s0, w_rec, consts)
        ctx.mark_non_differentiable(r)
        i = i if c.has_current else i0.clone()
        a = a if c.adaptive else a0.clone()
        return s, v, i, a, r

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_v, g_i, g_a, _g_r):  # type: ignore[override]
        c: Config = ctx.c
        u, s, aprev, refr, v0, s0, w_rec, consts = ctx.saved_tensors
        t_steps, b, n = u.shape
        m = b * n
        gs = _grad_or_zeros(g_s, u)
        gv = _grad_or_zeros(g_v, u[0]).reshape(b, n)
        gi, ga = _grad_or_zeros(g_i, u[0], c.has_current), _grad_or_zeros(g_a, u[0], c.adaptive)
        b_rec = ctx.feedback() if ctx.feedback is not None else None  # used only to send g back
        w_back = (w_rec if b_rec is None else b_rec).detach().to(u.dtype)
        need_galpha = ctx.alpha_is_tensor and ctx.needs_input_grad[3]
        acc = torch.zeros(m if need_galpha else 1, dtype=torch.float64, device=u.device)
        gx = torch.empty_like(u)
        gsr = torch.zeros_like(u[0])
        v0c = v0.detach().to(u.dtype).contiguous()
        no_spikes = torch.zeros_like(u[0])
        flags = _flags(c)
        for t in range(t_steps - 1, -1, -1):
            uprev, sprev = (u[t - 1], s[t - 1]) if t > 0 else (v0c, no_spikes)
            _launch(recurrent_step_backward, m, gs[t], gsr, u[t], s[t], aprev[t] if c.adaptive else aprev,
                    refr[t] if c.refractory_steps > 0 else refr, uprev, sprev, consts, gv, gi, ga, acc, gx[t], m,
                    CODE=c.code, NEED_GALPHA=need_galpha, **flags)
            gsr = gx[t] @ w_back
        g_w = None
        if ctx.needs_input_grad[1]:
            g_w = gx[0].t() @ s0.detach().to(u.dtype)
            if t_steps > 1:
                g_w = g_w + gx[1:].reshape(-1, n).t() @ s[:-1].reshape(-1, n)
        g_alpha = _alpha_grad(acc, ctx.alpha_like) if need_galpha else None
        g_i0 = gi if c.has_current else g_i
        g_a0 = ga if c.adaptive else g_a
        return gx, g_w, gsr, g_alpha, gv, g_i0, g_a0, None, None, None
