"""Lava's LIF update, fixed point (bit-exact with ``PyLifModelBitAcc``) and floating point, over a sequence.

Fixed point, per step and neuron (du, dv 12 bit; states 24 bit)::

    u = sign(u (4096 - du - 1)) (|u (4096 - du - 1)| >> 12) + (a << 6)
    u = u - 2**24 if u > 2**23;  u = u + 2**24 if u <= -2**23      (Lava's single wrap)
    v = sign(v (4096 - dv)) (|v (4096 - dv)| >> 12) + u + bias
    v = clip(v, -(2**23 - 1), 2**23 - 1)
    s = v > vth << 6;  v[s] = 0

Floating point: ``u = u (1 - du) + a;  v = v (1 - dv) + u + bias;  s = v > vth;  v[s] = 0``.
The whole-sequence kernels are fused loops (numba, one pass per step over all neurons of the batch); the
step functions are the numpy equivalents used with recurrent projections.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

U_LIMIT = 2**23
INT32 = 2**31


@njit(cache=True, inline="always")
def _decay(x, factor):  # pragma: no cover - compiled
    p = x * factor
    return (p + ((p >> 63) & 4095)) >> 12      # = sign(p) (|p| >> 12), branch-free (rounds toward zero)


@njit(cache=True, inline="always")
def _lif_fixed(x_in, uj, vj, bj, fu, fv, th):  # pragma: no cover - compiled
    """One fixed-point neuron step: returns (spike, u, v, wrapped, saturated)."""
    x = _decay(uj, fu) + (x_in << 6)
    if x >= INT32 or x < -INT32:
        x = ((x + INT32) % (2 * INT32)) - INT32
    w = x
    if x > U_LIMIT:
        w = x - 2 * U_LIMIT
    if w <= -U_LIMIT:
        w = x + 2 * U_LIMIT
    y = _decay(vj, fv) + w + bj
    sat = 0
    if y > U_LIMIT - 1:
        y = U_LIMIT - 1
        sat = 1
    elif y < -U_LIMIT + 1:
        y = -U_LIMIT + 1
        sat = 1
    s = 0
    if y > th:
        s = 1
        y = 0
    return s, w, y, 1 if w != x else 0, sat


@njit(cache=True, parallel=True)
def dense_lif_fixed(src, wt, exp, delay, du, dv, vth, bias, u, v, spikes, counts):  # pragma: no cover - compiled
    """Fused event-driven Dense + LIF over a batch: src (T, B, K) integer, wt = W.T (K, N) int32; u, v (B, N)
    int64 in place; spikes (T, B, N) uint8 out; counts (B, 2). Only non-zero inputs are visited."""
    t_steps, batch, k_in = src.shape
    n = wt.shape[1]
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    for b in prange(batch):
        acc = np.zeros(n, np.int64)
        wraps = 0
        sats = 0
        for t in range(t_steps):
            acc[:] = 0
            if t >= delay:
                for k in range(k_in):
                    x = src[t - delay, b, k]
                    if x != 0:
                        for j in range(n):
                            acc[j] += x * wt[k, j]
            for j in range(n):
                a = acc[j] << exp if exp > 0 else acc[j] >> (-exp)
                s, uu, vv, wr, sa = _lif_fixed(a, u[b, j], v[b, j], bias[j], fu, fv, th)
                spikes[t, b, j] = s
                u[b, j] = uu
                v[b, j] = vv
                wraps += wr
                sats += sa
        counts[b, 0] += wraps
        counts[b, 1] += sats


@njit(cache=True, parallel=True)
def conv_lif_fixed(src, w, stride, pad, dil, groups, out_hw, delay, du, dv, vth, bias, u, v, spikes,
                   counts):  # pragma: no cover - compiled
    """Fused event-driven Conv (wrapped to 24 bits, as Lava's Conv) + LIF: src (T, B, C, H, W) integer,
    w (Cout, Cin/groups, kH, kW) int64; u, v (B, Cout*Ho*Wo); spikes (T, B, Cout*Ho*Wo) uint8."""
    t_steps, batch, c_in, h, wd = src.shape
    c_out, cin_g, kh, kw = w.shape
    ho, wo = out_hw[0], out_hw[1]
    cout_g = c_out // groups
    n = c_out * ho * wo
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    for b in prange(batch):
        acc = np.zeros(n, np.int64)
        wraps = 0
        sats = 0
        for t in range(t_steps):
            acc[:] = 0
            if t >= delay:
                for c in range(c_in):
                    g = c // cin_g
                    ci = c - g * cin_g
                    for y in range(h):
                        for x in range(wd):
                            val = src[t - delay, b, c, y, x]
                            if val == 0:
                                continue
                            for ky in range(kh):
                                oy = y + pad[0] - ky * dil[0]
                                if oy < 0 or oy % stride[0] != 0:
                                    continue
                                oy //= stride[0]
                                if oy >= ho:
                                    continue
                                for kx in range(kw):
                                    ox = x + pad[1] - kx * dil[1]
                                    if ox < 0 or ox % stride[1] != 0:
                                        continue
                                    ox //= stride[1]
                                    if ox >= wo:
                                        continue
                                    for o in range(g * cout_g, (g + 1) * cout_g):
                                        acc[(o * ho + oy) * wo + ox] += val * w[o, ci, ky, kx]
            for j in range(n):
                a = ((acc[j] + U_LIMIT) % (2 * U_LIMIT)) - U_LIMIT
                s, uu, vv, wr, sa = _lif_fixed(a, u[b, j], v[b, j], bias[j], fu, fv, th)
                spikes[t, b, j] = s
                u[b, j] = uu
                v[b, j] = vv
                wraps += wr
                sats += sa
        counts[b, 0] += wraps
        counts[b, 1] += sats


@njit(cache=True, parallel=True)
def lif_fixed_sequence(a, du, dv, vth, bias, u, v, spikes, counts):  # pragma: no cover - compiled
    """a (T, M) int64 input; bias (M,); u, v (M,) int64 updated in place; spikes (T, M) uint8 out;
    counts (M, 2) int64: u wraps and v saturations per neuron."""
    t_steps, m = a.shape
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    block = 2048                      # neurons per task: rows of a stay contiguous, no per-step thread start
    for blk in prange((m + block - 1) // block):
        lo = blk * block
        hi = min(m, lo + block)
        for t in range(t_steps):
            for j in range(lo, hi):
                s, uu, vv, wr, sa = _lif_fixed(a[t, j], u[j], v[j], bias[j], fu, fv, th)
                spikes[t, j] = s
                u[j] = uu
                v[j] = vv
                counts[j, 0] += wr
                counts[j, 1] += sa


@njit(cache=True, parallel=True)
def lif_float_sequence(a, du, dv, vth, bias, u, v, spikes):  # pragma: no cover - compiled
    """Lava's floating-point LIF over a (T, M) float64 input; u, v updated in place."""
    t_steps, m = a.shape
    for j in prange(m):
        uj = u[j]
        vj = v[j]
        for t in range(t_steps):
            uj = uj * (1 - du) + a[t, j]
            vj = vj * (1 - dv) + uj + bias[j]
            if vj > vth:
                spikes[t, j] = 1
                vj = 0.0
            else:
                spikes[t, j] = 0
        u[j] = uj
        v[j] = vj


def _decay_np(x: np.ndarray, factor: int) -> np.ndarray:
    p = x * factor
    return np.sign(p) * (np.abs(p) >> 12)


def lif_fixed_step(a: np.ndarray, u: np.ndarray, v: np.ndarray, du: int, dv: int, vth: int, bias: np.ndarray,
                   counts: np.ndarray) -> np.ndarray:
    """One fixed-point step (numpy, int64 arrays updated in place); returns the spikes (uint8)."""
    x = _decay_np(u, 4096 - du - 1) + (a << 6)
    x = np.where((x >= INT32) | (x < -INT32), ((x + INT32) % (2 * INT32)) - INT32, x)
    w = np.where(x > U_LIMIT, x - 2 * U_LIMIT, x)
    w = np.where(w <= -U_LIMIT, x + 2 * U_LIMIT, w)
    counts[:, 0] += w != x
    u[:] = w
    y = _decay_np(v, 4096 - dv) + u + bias
    counts[:, 1] += (y > U_LIMIT - 1) | (y < -U_LIMIT + 1)
    y = np.clip(y, -U_LIMIT + 1, U_LIMIT - 1)
    s = y > (vth << 6)
    y[s] = 0
    v[:] = y
    return s.astype(np.uint8)


def lif_float_step(a: np.ndarray, u: np.ndarray, v: np.ndarray, du: float, dv: float, vth: float,
                   bias: np.ndarray) -> np.ndarray:
    """One floating-point step (numpy, arrays updated in place); returns the spikes (uint8)."""
    u[:] = u * (1 - du) + a
    v[:] = v * (1 - dv) + u + bias
    s = v > vth
    v[s] = 0.0
    return s.astype(np.uint8)
