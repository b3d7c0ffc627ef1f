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


def surrogate_constants(code: int, slope: float, width: float) -> tuple[float, float]:
    """(c1, c2) of ``_surrogate_row`` for a surrogate kind: computed once, passed in the arrays' dtype."""
    if code == 0:
        return slope / 2.0, math.pi / 2.0 * slope
    if code == 1:
        return slope, 0.0
    if code == 2:
        return slope / width, 1.0 / width
    return slope, 0.0


@njit(cache=True, error_model="numpy", fastmath=True)
def _surrogate_row(z, h, code, c1, c2, one):  # pragma: no cover - compiled
    """h = ds/dz for a row (one loop per kind, so each vectorises; constants from ``surrogate_constants``)::

    atan c1 / (1 + (c2 z)^2),  fast_sigmoid 1 / (1 + c1 |z|)^2,  triangle c1 max(0, 1 - c2 |z|),  straight c1
    """
    n = z.shape[0]
    if code == 0:
        for k in range(n):
            q = c2 * z[k]
            h[k] = c1 / (one + q * q)
    elif code == 1:
        for k in range(n):
            d = one + c1 * abs(z[k])
            h[k] = one / (d * d)
    elif code == 2:
        zero = one - one
        for k in range(n):
            h[k] = c1 * max(zero, one - c2 * abs(z[k]))
    else:
        for k in range(n):
            h[k] = c1


@njit(cache=True, error_model="numpy")
def _forward_row_lif(xin, v, s_row, u_row, alpha, v_th, bias, zr, one, zero):  # pragma: no cover - compiled
    """``_forward_row`` for the plain LIF/IF: (i, a, r) pass through untouched, as in ``neuron_step``, and the
    loop touches four arrays only (it vectorises). Same operations in the same order: bit-identical."""
    nzr = one - zr
    for k in range(xin.shape[0]):
        u = alpha * v[k] + xin[k]
        u = u + bias
        s = one if u - v_th > zero else zero
        s_row[k] = s
        u_row[k] = u
        v[k] = u - s * (u * zr + v_th * nzr)


@njit(cache=True, error_model="numpy")
def _forward_row(xin, v, cur, a, r, s_row, u_row, aprev_row, refr_row, alpha, alpha_syn, v_th, bias, beta, rho,
                 refractory_steps, zr, one, zero, adaptive, use_refr):  # pragma: no cover - compiled
    """One step for a row of neurons; state (v, cur, a, r) updated in place."""
    n = xin.shape[0]
    if not adaptive and not use_refr and alpha_syn == 0:
        _forward_row_lif(xin, v, s_row, u_row, alpha, v_th, bias, zr, one, zero)
        return
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


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _lif_adjoint(k, h, z, g_in, u_row, gv, gx_row, alpha, v_th, zr, nzr, one, zero):  # pragma: no cover - compiled
    s = one if z > zero else zero
    g = gv[k]
    gu = g * (one - zr * s) + (g_in[k] - g * (u_row[k] * zr + v_th * nzr)) * h
    gv[k] = alpha * gu
    gx_row[k] = gu


@njit(cache=True, error_model="numpy", fastmath=True)
def _backward_row_lif(g_in, u_row, gv, gx_row, alpha, v_th, zr, one, code, c1, c2):  # pragma: no cover - compiled
    """``_backward_row`` for the plain LIF/IF (no current, adaptation, refractoriness or dL/dalpha): one pass
    over four arrays, the surrogate inline, ``s = H(u - v_th)`` recomputed instead of read (few enough
    arrays that LLVM vectorises the loop)."""
    n = u_row.shape[0]
    zero = one - one
    nzr = one - zr
    if code == 0:
        for k in range(n):
            z = u_row[k] - v_th
            q = c2 * z
            _lif_adjoint(k, c1 / (one + q * q), z, g_in, u_row, gv, gx_row, alpha, v_th, zr, nzr, one, zero)
    elif code == 1:
        for k in range(n):
            z = u_row[k] - v_th
            d = one + c1 * abs(z)
            _lif_adjoint(k, one / (d * d), z, g_in, u_row, gv, gx_row, alpha, v_th, zr, nzr, one, zero)
    elif code == 2:
        for k in range(n):
            z = u_row[k] - v_th
            _lif_adjoint(k, c1 * max(zero, one - c2 * abs(z)), z, g_in, u_row, gv, gx_row, alpha, v_th, zr, nzr,
                         one, zero)
    else:
        for k in range(n):
            z = u_row[k] - v_th
            _lif_adjoint(k, c1, z, g_in, u_row, gv, gx_row, alpha, v_th, zr, nzr, one, zero)


@njit(cache=True, error_model="numpy", fastmath=True)
def _backward_row(g_in, u_row, s_row, aprev_row, refr_row, vprev, gv, gi, ga, gx_row, h,
                  alpha, alpha_syn, v_th, beta, rho, zr, one, adaptive, use_refr, code, c1, c2,
                  need_galpha):  # pragma: no cover - compiled
    """Adjoint of one step for a row; (gv, gi, ga) updated in place; returns this row's dL/dalpha."""
    n = u_row.shape[0]
    if not adaptive and not use_refr and not need_galpha and alpha_syn == 0:
        _backward_row_lif(g_in, u_row, gv, gx_row, alpha, v_th, zr, one, code, c1, c2)
        return 0.0
    if adaptive:
        for k in range(n):
            h[k] = u_row[k] - (v_th + beta * aprev_row[k])
    else:
        for k in range(n):
            h[k] = u_row[k] - v_th
    _surrogate_row(h, h, code, c1, c2, one)
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


@njit(cache=True, error_model="numpy")
def _post_reset(u_row, s_row, v_th, zr, one, out):  # pragma: no cover - compiled
    for k in range(u_row.shape[0]):
        out[k] = u_row[k] - s_row[k] * (u_row[k] * zr + v_th * (one - zr))


@njit(cache=True, error_model="numpy", parallel=True)
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


@njit(cache=True, error_model="numpy", parallel=True)
def sequence_backward(block, gs_in, gv_t, gi_t, ga_t, u_s, s_s, aprev_s, refr_s, v0, alpha, alpha_syn, v_th, beta, rho,
                      use_refr, zr, one, adaptive, code, c1, c2, need_galpha,
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
                                 code, c1, c2, need_galpha)
        gv0[lo:hi] = gv
        gi0[lo:hi] = gi
        ga0[lo:hi] = ga
        galpha_parts[blk] = acc


@njit(cache=True, error_model="numpy")
def _active(row, idx):  # pragma: no cover - compiled
    """Indices of the non-zero entries of row into idx (branch-free); returns their count."""
    na = 0
    for j in range(row.shape[0]):
        idx[na] = j
        na += row[j] != 0
    return na


@njit(cache=True, error_model="numpy", fastmath=True)
def _input_current(xin, t, b, batch, x, events, offsets, cols, vals, w_in_t, b_in, prev, idx, na, w_t):  # pragma: no cover
    """xin = x[t, b] (with ``events``: b_in + sum_q vals[q] w_in_t[cols[q]] over the CSR entries of input row
    t*batch + b) + sum_j prev[j] w_t[j] over the neurons j = idx[:na] active at t-1."""
    n = xin.shape[0]
    if events:
        for k in range(n):
            xin[k] = b_in[k]
        row = t * batch + b
        for q in range(offsets[row], offsets[row + 1]):
            c = cols[q]
            v = vals[q]
            for k in range(n):
                xin[k] += v * w_in_t[c, k]
    else:
        for k in range(n):
            xin[k] = x[t, b, k]
    for a in range(na):
        j = idx[a]
        w = prev[j]
        for k in range(n):
            xin[k] += w * w_t[j, k]


@njit(cache=True, error_model="numpy", parallel=True)
def recurrent_forward(x, events, offsets, cols, vals, w_in_t, b_in, w_t, s0, v0, i0, a0, r0, alpha, alpha_syn, v_th,
                      bias, beta, rho, refractory_steps, zr, one, adaptive, s_out, u_out, aprev_out, refr_out,
                      v_t, i_t, a_t, r_t):  # pragma: no cover - compiled
    """Step t of row b gets the input current x[t, b] + s[t-1] @ w_rec.T, the recurrent part summed from the rows
    of w_t = w_rec.T (N_in, N_out) of the active neurons only (spikes are sparse). With ``events`` the input
    current is the input projection b_in + W_in x[t, b], built from the CSR input (offsets (T*B + 1,), cols, vals;
    w_in_t = W_in.T) in the same loop, and ``x`` is unused. Rows (batch entries) run in parallel."""
    T, B, N = s_out.shape
    zero = one - one
    use_refr = refractory_steps > 0
    for b in prange(B):
        v = v0[b].copy()
        cur = i0[b].copy()
        a = a0[b].copy()
        r = r0[b].copy()
        xin = np.empty(N, s_out.dtype)
        idx = np.empty(N, np.int64)
        for t in range(T):
            prev = s_out[t - 1, b] if t > 0 else s0[b]
            na = _active(prev, idx)
            _input_current(xin, t, b, B, x, events, offsets, cols, vals, w_in_t, b_in, prev, idx, na, w_t)
            _forward_row(xin, v, cur, a, r, s_out[t, b], u_out[t, b],
                         aprev_out[t, b] if adaptive else aprev_out[0, 0, 0:1],
                         refr_out[t, b] if use_refr else refr_out[0, 0, 0:1],
                         alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps, zr, one, zero, adaptive, use_refr)
        v_t[b] = v
        i_t[b] = cur
        a_t[b] = a
        r_t[b] = r


@njit(cache=True, error_model="numpy", parallel=True)
def recurrent_backward(gs_in, gv_t, gi_t, ga_t, u_s, s_s, aprev_s, refr_s, v0, s0, w, events, offsets, cols, vals,
                       alpha, alpha_syn, v_th, beta, rho, use_refr, zr, one, adaptive, code, c1, c2, need_galpha,
                       gx, gv0, gi0, ga0, gs0, gw_t_parts, gw_in_parts, gb_parts, galpha_parts):  # pragma: no cover
    """Adjoint of ``recurrent_forward``, the batch split in ``gw_t_parts.shape[0]`` chunks run in parallel.

    g[t] = dL/d(input current of step t) goes back to s[t-1] as ``g[t] @ w_rec`` (one small BLAS matmul per step
    and chunk) and into ``dL/dw_rec.T[j] += g[t]`` for the neurons j active at t-1 (per chunk, summed by the
    caller). Without ``events`` g is written to gx; with ``events`` it goes into ``dL/dW_in.T[cols[q]] +=
    vals[q] g[t]`` for the row's CSR entries and into ``dL/db_in`` instead (gx is unused)."""
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
        idx = np.empty(N, np.int64)
        gwt = gw_t_parts[ch]
        gwi = gw_in_parts[ch]
        gb = gb_parts[ch]
        acc = 0.0
        for tt in range(T):
            t = T - 1 - tt
            for q in range(nb):
                b = b0 + q
                gq = gin[q]
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
                                     gv[q], gi[q], ga[q], gq, h, alpha, alpha_syn, v_th, beta, rho, zr, one,
                                     adaptive, use_refr, code, c1, c2, need_galpha)
                if events:
                    row = t * B + b
                    for e in range(offsets[row], offsets[row + 1]):
                        c = cols[e]
                        v = vals[e]
                        for n in range(N):
                            gwi[c, n] += v * gq[n]
                    for n in range(N):
                        gb[n] += gq[n]
                else:
                    for n in range(N):
                        gx[t, b, n] = gq[n]
                prev = s_s[t - 1, b] if t > 0 else s0[b]
                for a in range(_active(prev, idx)):
                    j = idx[a]
                    sp = prev[j]
                    for n in range(N):
                        gwt[j, n] += sp * gq[n]
            np.dot(gin, w, gsr)
        gv0[b0:b1] = gv
        gi0[b0:b1] = gi
        ga0[b0:b1] = ga
        gs0[b0:b1] = gsr
        galpha_parts[ch] = acc
