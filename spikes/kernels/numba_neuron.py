"""Compiled (numba) forward and backward loops over time for the integrate-and-fire family.

The equations are those of ``spikes.neurons.dynamics`` (one step)::

    i = alpha_syn i + x                (has_current; else i = x)
    u = alpha v + i + bias             (u = v while refractory)
    z = u - (v_th + beta a)            s = H(z) (0 while refractory)
    v = u - v_th s  |  u (1 - s)       a = rho a + s

Forward keeps only ``u`` (pre-reset membrane), ``s``, and when needed ``a[t-1]`` and the refractory mask;
backward runs the adjoint recurrence (reverse time) with the surrogate ``ds/dz``::

    gs = dL/ds[t] + ga (adaptive) - v_th gv  (subtract) | - u gv (zero)
    gu = gv | gv (1 - s);  gz = gs sg(z) (not refractory);  gu += gz;  ga' = rho ga - beta gz
    gx[t] = gi' = gi + gu (not refractory; else gi);  gi = alpha_syn gi';  gv' = alpha gu (refractory: gu)
    dL/dalpha += gu v[t-1]

All scalar parameters are passed in the arrays' dtype, so float32 runs in float32 like PyTorch and the
forward is bit-identical to the per-step reference. Neurons are independent: blocks of neurons (or, for
the recurrent population, batch elements) run in parallel (``prange``); time runs inside each block.
"""
from __future__ import annotations

import math

import numpy as np
from numba import get_thread_id, njit, prange

BLOCK = 2048  # neurons per parallel work item (state of a block stays in L1/L2 across time)


@njit(cache=True, inline="always")
def _surrogate(z, code, slope, width):
    if code == 0:
        c = (math.pi / 2.0) * slope * z
        return (slope / 2.0) / (1.0 + c * c)
    if code == 1:
        d = 1.0 + slope * abs(z)
        return 1.0 / (d * d)
    if code == 2:
        return (slope / width) * max(0.0, 1.0 - abs(z) / width)
    return slope


@njit(cache=True, parallel=True)
def sequence_forward(x, v0, i0, a0, r0, alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps,
                     reset_zero, has_current, adaptive,
                     s_out, u_out, aprev_out, refr_out, v_t, i_t, a_t, r_t):  # pragma: no cover - compiled
    """x: (T, M). Writes spikes s_out, pre-reset membrane u_out, a[t-1] (adaptive), refractory mask, final state."""
    T, M = x.shape
    use_refr = refractory_steps > 0
    nblk = (M + BLOCK - 1) // BLOCK
    for blk in prange(nblk):
        lo = blk * BLOCK
        hi = min(M, lo + BLOCK)
        v = v0[lo:hi].copy()
        cur = i0[lo:hi].copy()
        a = a0[lo:hi].copy()
        r = r0[lo:hi].copy()
        for t in range(T):
            for k in range(hi - lo):
                m = lo + k
                if has_current:
                    ii = alpha_syn * cur[k] + x[t, m]
                    cur[k] = ii
                else:
                    ii = x[t, m]
                u = alpha * v[k] + ii
                if bias != 0:
                    u = u + bias
                refr = False
                if use_refr:
                    refr = r[k] > 0
                    refr_out[t, m] = refr
                    if refr:
                        u = v[k]
                if adaptive:
                    aprev_out[t, m] = a[k]
                    z = u - (v_th + beta * a[k])
                else:
                    z = u - v_th
                s = 1.0 if (z > 0 and not refr) else 0.0
                s_out[t, m] = s
                u_out[t, m] = u
                if reset_zero:
                    v[k] = u * (1.0 - s)
                else:
                    v[k] = u - v_th * s
                if adaptive:
                    a[k] = rho * a[k] + s
                if use_refr:
                    if s > 0:
                        r[k] = refractory_steps
                    elif r[k] > 0:
                        r[k] = r[k] - 1
        v_t[lo:hi] = v
        i_t[lo:hi] = cur
        a_t[lo:hi] = a
        r_t[lo:hi] = r


@njit(cache=True, parallel=True)
def sequence_backward(gs_in, gv_t, gi_t, ga_t, u_s, s_s, aprev_s, refr_s, v0,
                      alpha, alpha_syn, v_th, beta, rho, use_refr, reset_zero, has_current, adaptive,
                      code, slope, width, need_galpha,
                      gx, gv0, gi0, ga0, galpha_parts):  # pragma: no cover - compiled
    """Adjoint of ``sequence_forward``; writes gx (T, M), the initial-state gradients and per-block dL/dalpha."""
    T, M = gs_in.shape
    nblk = (M + BLOCK - 1) // BLOCK
    for blk in prange(nblk):
        lo = blk * BLOCK
        hi = min(M, lo + BLOCK)
        gv = gv_t[lo:hi].copy()
        gi = gi_t[lo:hi].copy()
        ga = ga_t[lo:hi].copy()
        acc = 0.0
        for tt in range(T):
            t = T - 1 - tt
            for k in range(hi - lo):
                m = lo + k
                u = u_s[t, m]
                s = s_s[t, m]
                refr = use_refr and refr_s[t, m] != 0
                g_s = gs_in[t, m]
                if adaptive:
                    g_s += ga[k]
                if reset_zero:
                    gu = gv[k] * (1.0 - s)
                    g_s -= u * gv[k]
                else:
                    gu = gv[k]
                    g_s -= v_th * gv[k]
                gan = 0.0
                if adaptive:
                    gan = rho * ga[k]
                if not refr:
                    if adaptive:
                        z = u - (v_th + beta * aprev_s[t, m])
                    else:
                        z = u - v_th
                    gz = g_s * _surrogate(z, code, slope, width)
                    gu += gz
                    if adaptive:
                        gan -= beta * gz
                    gin = gu
                    gv[k] = alpha * gu
                    if need_galpha:
                        if t > 0:
                            up = u_s[t - 1, m]
                            sp = s_s[t - 1, m]
                            vp = up * (1.0 - sp) if reset_zero else up - v_th * sp
                        else:
                            vp = v0[m]
                        acc += gu * vp
                else:
                    gin = 0.0
                    gv[k] = gu
                if adaptive:
                    ga[k] = gan
                if has_current:
                    g = gi[k] + gin
                    gx[t, m] = g
                    gi[k] = alpha_syn * g
                else:
                    gx[t, m] = gin
        gv0[lo:hi] = gv
        gi0[lo:hi] = gi
        ga0[lo:hi] = ga
        galpha_parts[blk] = acc


@njit(cache=True, parallel=True)
def recurrent_forward(x, w_t, s0, v0, i0, a0, r0, alpha, alpha_syn, v_th, bias, beta, rho, refractory_steps,
                      reset_zero, has_current, adaptive,
                      s_out, u_out, aprev_out, refr_out, v_t, i_t, a_t, r_t):  # pragma: no cover - compiled
    """x: (T, B, N) input current; w_t = w_rec.T (N_in, N_out), contiguous. Step t gets x[t] + s[t-1] @ w_rec.T,
    accumulated from the rows of w_t of the active neurons only (spikes are sparse)."""
    T, B, N = x.shape
    use_refr = refractory_steps > 0
    for b in prange(B):
        v = v0[b].copy()
        cur = i0[b].copy()
        a = a0[b].copy()
        r = r0[b].copy()
        rec = np.zeros(N, x.dtype)
        act = np.empty(N, np.int64)
        val = np.empty(N, x.dtype)
        nact = 0
        for j in range(N):
            if s0[b, j] != 0:
                act[nact] = j
                val[nact] = s0[b, j]
                nact += 1
        for t in range(T):
            rec[:] = 0.0
            for q in range(nact):
                j = act[q]
                w = val[q]
                for n in range(N):
                    rec[n] += w * w_t[j, n]
            nact = 0
            for n in range(N):
                xin = x[t, b, n] + rec[n]
                if has_current:
                    ii = alpha_syn * cur[n] + xin
                    cur[n] = ii
                else:
                    ii = xin
                u = alpha * v[n] + ii
                if bias != 0:
                    u = u + bias
                refr = False
                if use_refr:
                    refr = r[n] > 0
                    refr_out[t, b, n] = refr
                    if refr:
                        u = v[n]
                if adaptive:
                    aprev_out[t, b, n] = a[n]
                    z = u - (v_th + beta * a[n])
                else:
                    z = u - v_th
                s = 1.0 if (z > 0 and not refr) else 0.0
                s_out[t, b, n] = s
                u_out[t, b, n] = u
                if s > 0:
                    act[nact] = n
                    val[nact] = s
                    nact += 1
                if reset_zero:
                    v[n] = u * (1.0 - s)
                else:
                    v[n] = u - v_th * s
                if adaptive:
                    a[n] = rho * a[n] + s
                if use_refr:
                    if s > 0:
                        r[n] = refractory_steps
                    elif r[n] > 0:
                        r[n] = r[n] - 1
        v_t[b] = v
        i_t[b] = cur
        a_t[b] = a
        r_t[b] = r


@njit(cache=True, parallel=True, fastmath=True)
def recurrent_backward(gs_in, gv_t, gi_t, ga_t, u_s, s_s, aprev_s, refr_s, v0, s0, w,
                       alpha, alpha_syn, v_th, beta, rho, use_refr, reset_zero, has_current, adaptive,
                       code, slope, width, need_galpha,
                       gx, gv0, gi0, ga0, gs0, gw_t_parts, galpha_parts):  # pragma: no cover - compiled
    """Adjoint of ``recurrent_forward``. gx[t] = dL/d(input current of step t); the recurrent term sends
    gx[t] @ w_rec back to s[t-1] (rows with zero gradient skipped), and dL/dw_rec.T accumulates
    gx[t] into the rows of the neurons active at t-1 (one partial sum per thread, summed by the caller)."""
    T, B, N = gs_in.shape
    for b in prange(B):
        gv = gv_t[b].copy()
        gi = gi_t[b].copy()
        ga = ga_t[b].copy()
        gsr = np.zeros(N, gs_in.dtype)
        gin_all = np.empty(N, gs_in.dtype)
        gwt = gw_t_parts[get_thread_id()]
        acc = 0.0
        for tt in range(T):
            t = T - 1 - tt
            for n in range(N):
                u = u_s[t, b, n]
                s = s_s[t, b, n]
                refr = use_refr and refr_s[t, b, n] != 0
                g_s = gs_in[t, b, n] + gsr[n]
                if adaptive:
                    g_s += ga[n]
                if reset_zero:
                    gu = gv[n] * (1.0 - s)
                    g_s -= u * gv[n]
                else:
                    gu = gv[n]
                    g_s -= v_th * gv[n]
                gan = 0.0
                if adaptive:
                    gan = rho * ga[n]
                if not refr:
                    if adaptive:
                        z = u - (v_th + beta * aprev_s[t, b, n])
                    else:
                        z = u - v_th
                    gz = g_s * _surrogate(z, code, slope, width)
                    gu += gz
                    if adaptive:
                        gan -= beta * gz
                    gin = gu
                    gv[n] = alpha * gu
                    if need_galpha:
                        if t > 0:
                            up = u_s[t - 1, b, n]
                            sp = s_s[t - 1, b, n]
                            vp = up * (1.0 - sp) if reset_zero else up - v_th * sp
                        else:
                            vp = v0[b, n]
                        acc += gu * vp
                else:
                    gin = 0.0
                    gv[n] = gu
                if adaptive:
                    ga[n] = gan
                if has_current:
                    g = gi[n] + gin
                    gi[n] = alpha_syn * g
                else:
                    g = gin
                gx[t, b, n] = g
                gin_all[n] = g
            # recurrence: dL/ds[t-1] = gx[t] @ w_rec ;  dL/dw_rec.T[j, :] += s[t-1, j] * gx[t]
            gsr[:] = 0.0
            for n in range(N):
                g = gin_all[n]
                if g != 0:
                    for j in range(N):
                        gsr[j] += g * w[n, j]
            if t > 0:
                for j in range(N):
                    sp = s_s[t - 1, b, j]
                    if sp != 0:
                        for n in range(N):
                            gwt[j, n] += sp * gin_all[n]
            else:
                for j in range(N):
                    sp = s0[b, j]
                    if sp != 0:
                        for n in range(N):
                            gwt[j, n] += sp * gin_all[n]
        gv0[b] = gv
        gi0[b] = gi
        ga0[b] = ga
        gs0[b] = gsr
        galpha_parts[b] = acc
