"""Compiled (numba) forward and backward loops over time for the integrate-and-fire family.

The equations are those of ``spikes.neurons.dynamics`` (one step)::

    i = alpha_syn i + x                (alpha_syn = 0: i = x)
    u = alpha v + i + bias             (u = v while refractory)
    z = u - (v_th + beta a)            s = H(z) (0 while refractory)
    v = u - v_th s  |  u (1 - s)       a = rho a + s

Forward keeps only ``u`` (pre-reset membrane), ``s``, and when needed ``a[t-1]`` and the refractory mask;
backward runs the adjoint recurrence (reverse time) with the surrogate ``h = ds/dz``::

    gs = dL/ds[t] + ga - v_th gv  (subtract) | - u gv (zero)
    gu = gv | gv (1 - s);  gz = gs h (0 while refractory);  gu += gz;  ga' = rho ga - beta gz
    gx[t] = gi' = gi + gu (refractory: gi);  gi = alpha_syn gi';  gv' = alpha gu (refractory: gu)
    dL/dalpha += gu v[t-1]

The caller passes ``alpha_syn = 0`` without a synaptic current and ``beta = rho = 0`` without adaptation
(the state then passes through untouched, which the caller handles), so the inner loops are branch-free and
vectorise. All scalars come in the arrays' dtype: float32 runs in float32 like PyTorch and the forward is
bit-identical to the per-step reference. Neurons are independent: blocks of neurons (sequence) or chunks of
the batch (recurrent) run in parallel (``prange``), time runs inside each.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

BLOCK = 4096  # at most this many neurons per parallel work item (a block's state stays in cache across time)


def block_size(m: int, threads: int) -> int:
    """Neurons per work item: at most BLOCK, and at least ``threads`` balanced items when there are enough neurons."""
    items = max(-(-m // BLOCK), min(threads, -(-m // 256)), 1)
    return max(1, -(-m // items))


@njit(cache=True)
def _surrogate_row(z, h, code, slope, width):  # pragma: no cover - compiled
    """h = ds/dz for a row (one loop per kind, so each vectorises)."""
    n = z.shape[0]
    if code == 0:
        c = (math.pi / 2.0) * slope
        for k in range(n):
            q = c * z[k]
            h[k] = (slope / 2.0) / (1.0 + q * q)
    elif code == 1:
        for k in range(n):
            d = 1.0 + slope * abs(z[k])
            h[k] = 1.0 / (d * d)
    elif code == 2:
        for k in range(n):
            h[k] = (slope / width) * max(0.0, 1.0 - abs(z[k]) / width)
    else:
        for k in range(n):
            h[k] = slope


@njit(cache=True)
def _forward_row(xin, v, cur, a, r, s_row, u_row, aprev_row, refr_row, alpha, alpha_syn, v_th, bias, beta, rho,
                 refractory_steps, zr, one, zero, adaptive, use_refr):  # pragma: no cover - compiled
    """One step for a row of neurons; state (v, cur, a, r) updated in place."""
    n = xin.shape[0]
    if adaptive:
        for k in range(n):
            aprev_row[k] = a[k]
    if use_refr:
        for k in range(n):
            refr_row[k] = r[k] > 0
    nzr = one - zr
    for k in range(n):
        ii = alpha_syn * cur[k] + xin[k]
        cur[k] = ii
        u = alpha * v[k] + ii
        u = u + bias
        rf = r[k] > 0
        if rf:
            u = v[k]
        z = u - (v_th + beta * a[k])
        s = one if (z > zero and not rf) else zero
        s_row[k] = s
        u_row[k] = u
        v[k] = u - s * (u * zr + v_th * nzr)
        a[k] = rho * a[k] + s
        r[k] = refractory_steps if s > zero else max(r[k] - 1, 0)


@njit(cache=True, fastmath=True)
def _backward_row(g_in, u_row, s_row, aprev_row, refr_row, vprev, gv, gi, ga, gx_row, h,
                  alpha, alpha_syn, v_th, beta, rho, zr, one, adaptive, use_refr, code, slope, width,
                  need_galpha):  # pragma: no cover - compiled
    """Adjoint of one step for a row; (gv, gi, ga) updated in place; returns this row's dL/dalpha."""
    n = u_row.shape[0]
    if adaptive:
        for k in range(n):
            h[k] = u_row[k] - (v_th + beta * aprev_row[k])
    else:
        for k in range(n):
            h[k] = u_row[k] - v_th
    _surrogate_row(h, h, code, slope, width)
    nzr = one - zr
    acc = 0.0
    for k in range(n):
        s = s_row[k]
        u = u_row[k]
        nr = one
        if use_refr:
            nr = one - refr_row[k]
        g = gv[k]
        g_s = g_in[k] + ga[k] - g * (u * zr + v_th * nzr)
        gz = g_s * h[k] * nr
        gu = g * (one - zr * s) + gz
        ga[k] = rho * ga[k] - beta * gz
        gin = gu * nr
        gv[k] = gu * (alpha * nr + (one - nr))
        if need_galpha:
            acc += gin * vprev[k]
        gg = gi[k] + gin
        gx_row[k] = gg
        gi[k] = alpha_syn * gg
    return acc


@njit(cache=True)
def _post_reset(u_row, s_row, v_th, zr, one, out):  # pragma: no cover - compiled
    for k in range(u_row.shape[0]):
        out[k] = u_row[k] - s_row[k] * (u_row[k] * zr + v_th * (one - zr))


@njit(cache=True, parallel=True)
def sequence_forward(block, x, v0, i0, a0, r0, alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps, zr, one,
                     adaptive, s_out, u_out, aprev_out, refr_out, v_t, i_t, a_t, r_t):  # pragma: no cover
    """x: (T, M). Writes spikes, pre-reset membrane, a[t-1] (adaptive), refractory mask and the final state."""
    T, M = x.shape
    zero = one - one
    use_refr = refractory_steps > 0
    nblk = (M + block - 1) // block
    for blk in prange(nblk):
        lo = blk * block
        hi = min(M, lo + block)
        v = v0[lo:hi].copy()
        cur = i0[lo:hi].copy()
        a = a0[lo:hi].copy()
        r = r0[lo:hi].copy()
        for t in range(T):
            _forward_row(x[t, lo:hi], v, cur, a, r, s_out[t, lo:hi], u_out[t, lo:hi],
                         aprev_out[t, lo:hi] if adaptive else aprev_out[0, 0:1],
                         refr_out[t, lo:hi] if use_refr else refr_out[0, 0:1],
                         alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps, zr, one, zero, adaptive, use_refr)
        v_t[lo:hi] = v
        i_t[lo:hi] = cur
        a_t[lo:hi] = a
        r_t[lo:hi] = r


@njit(cache=True, parallel=True)
def sequence_backward(block, gs_in, gv_t, gi_t, ga_t, u_s, s_s, aprev_s, refr_s, v0, alpha, alpha_syn, v_th, beta, rho,
                      use_refr, zr, one, adaptive, code, slope, width, need_galpha,
                      gx, gv0, gi0, ga0, galpha_parts):  # pragma: no cover - compiled
    """Adjoint of ``sequence_forward``; writes gx (T, M), the initial-state gradients and per-block dL/dalpha."""
    T, M = gs_in.shape
    nblk = (M + block - 1) // block
    for blk in prange(nblk):
        lo = blk * block
        hi = min(M, lo + block)
        gv = gv_t[lo:hi].copy()
        gi = gi_t[lo:hi].copy()
        ga = ga_t[lo:hi].copy()
        h = np.empty(hi - lo, gs_in.dtype)
        vprev = np.zeros(hi - lo if need_galpha else 1, gs_in.dtype)
        acc = 0.0
        for tt in range(T):
            t = T - 1 - tt
            if need_galpha:
                if t > 0:
                    _post_reset(u_s[t - 1, lo:hi], s_s[t - 1, lo:hi], v_th, zr, one, vprev)
                else:
                    vprev[:] = v0[lo:hi]
            acc += _backward_row(gs_in[t, lo:hi], u_s[t, lo:hi], s_s[t, lo:hi],
                                 aprev_s[t, lo:hi] if adaptive else aprev_s[0, 0:1],
                                 refr_s[t, lo:hi] if use_refr else refr_s[0, 0:1], vprev, gv, gi, ga,
                                 gx[t, lo:hi], h, alpha, alpha_syn, v_th, beta, rho, zr, one, adaptive, use_refr,
                                 code, slope, width, need_galpha)
        gv0[lo:hi] = gv
        gi0[lo:hi] = gi
        ga0[lo:hi] = ga
        galpha_parts[blk] = acc


@njit(cache=True, parallel=True)
def recurrent_forward(x, w_t, s0, v0, i0, a0, r0, alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps, zr,
                      one, adaptive, s_out, u_out, aprev_out, refr_out, v_t, i_t, a_t, r_t):  # pragma: no cover
    """x: (T, B, N) input current; w_t = w_rec.T (N_in, N_out), contiguous. Step t gets x[t] + s[t-1] @ w_rec.T,
    summed from the rows of w_t of the active neurons only (spikes are sparse)."""
    T, B, N = x.shape
    zero = one - one
    use_refr = refractory_steps > 0
    for b in prange(B):
        v = v0[b].copy()
        cur = i0[b].copy()
        a = a0[b].copy()
        r = r0[b].copy()
        rec = np.zeros(N, x.dtype)
        xin = np.empty(N, x.dtype)
        prev = s0[b].copy()
        for t in range(T):
            rec[:] = 0.0
            for j in range(N):
                w = prev[j]
                if w != 0:
                    for n in range(N):
                        rec[n] += w * w_t[j, n]
            for n in range(N):
                xin[n] = x[t, b, n] + rec[n]
            _forward_row(xin, v, cur, a, r, s_out[t, b], u_out[t, b],
                         aprev_out[t, b] if adaptive else aprev_out[0, 0, 0:1],
                         refr_out[t, b] if use_refr else refr_out[0, 0, 0:1],
                         alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps, zr, one, zero, adaptive, use_refr)
            prev = s_out[t, b]
        v_t[b] = v
        i_t[b] = cur
        a_t[b] = a
        r_t[b] = r


@njit(cache=True, parallel=True)
def recurrent_backward(gs_in, gv_t, gi_t, ga_t, u_s, s_s, aprev_s, refr_s, v0, s0, w,
                       alpha, alpha_syn, v_th, beta, rho, use_refr, zr, one, adaptive, code, slope, width,
                       need_galpha, gx, gv0, gi0, ga0, gs0, gw_t_parts, galpha_parts):  # pragma: no cover
    """Adjoint of ``recurrent_forward``, the batch split in ``gw_t_parts.shape[0]`` chunks run in parallel.

    gx[t] = dL/d(input current of step t); the recurrence sends ``gx[t] @ w_rec`` back to s[t-1] (one small
    BLAS matmul per step and chunk), and ``dL/dw_rec.T[j] += gx[t]`` for the neurons j active at t-1 (per chunk,
    summed by the caller)."""
    T, B, N = gs_in.shape
    nchunk = gw_t_parts.shape[0]
    step = (B + nchunk - 1) // nchunk
    for ch in prange(nchunk):
        b0 = ch * step
        b1 = min(B, b0 + step)
        nb = b1 - b0
        if nb <= 0:
            continue
        gv = gv_t[b0:b1].copy()
        gi = gi_t[b0:b1].copy()
        ga = ga_t[b0:b1].copy()
        gsr = np.zeros((nb, N), gs_in.dtype)
        gin = np.empty((nb, N), gs_in.dtype)
        g_row = np.empty(N, gs_in.dtype)
        h = np.empty(N, gs_in.dtype)
        vprev = np.zeros(N if need_galpha else 1, gs_in.dtype)
        gwt = gw_t_parts[ch]
        acc = 0.0
        for tt in range(T):
            t = T - 1 - tt
            for q in range(nb):
                b = b0 + q
                for n in range(N):
                    g_row[n] = gs_in[t, b, n] + gsr[q, n]
                if need_galpha:
                    if t > 0:
                        _post_reset(u_s[t - 1, b], s_s[t - 1, b], v_th, zr, one, vprev)
                    else:
                        vprev[:] = v0[b]
                acc += _backward_row(g_row, u_s[t, b], s_s[t, b],
                                     aprev_s[t, b] if adaptive else aprev_s[0, 0, 0:1],
                                     refr_s[t, b] if use_refr else refr_s[0, 0, 0:1], vprev,
                                     gv[q], gi[q], ga[q], gin[q], h, alpha, alpha_syn, v_th, beta, rho, zr, one,
                                     adaptive, use_refr, code, slope, width, need_galpha)
                gx[t, b] = gin[q]
                prev = s_s[t - 1, b] if t > 0 else s0[b]
                for j in range(N):
                    sp = prev[j]
                    if sp != 0:
                        for n in range(N):
                            gwt[j, n] += sp * gin[q, n]
            np.dot(gin, w, gsr)
        gv0[b0:b1] = gv
        gi0[b0:b1] = gi
        ga0[b0:b1] = ga
        gs0[b0:b1] = gsr
        galpha_parts[ch] = acc
