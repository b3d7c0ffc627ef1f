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
    return (p >> 12) if p >= 0 else -((-p) >> 12)


@njit(cache=True, parallel=True)
def lif_fixed_sequence(a, du, dv, vth, bias, u, v, spikes, counts):  # pragma: no cover - compiled
    """a (T, M) int64 input; bias (M,); u, v (M,) int64 updated in place; spikes (T, M) uint8 out;
    counts (M, 2) int64: u wraps and v saturations per neuron."""
    t_steps, m = a.shape
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    for j in prange(m):
        uj = u[j]
        vj = v[j]
        bj = bias[j]
        wraps = 0
        sats = 0
        for t in range(t_steps):
            x = _decay(uj, fu) + (a[t, j] << 6)
            if x >= INT32 or x < -INT32:  # Lava adds into an int32 array
                x = ((x + INT32) % (2 * INT32)) - INT32
            w = x
            if x > U_LIMIT:
                w = x - 2 * U_LIMIT
            if w <= -U_LIMIT:
                w = x + 2 * U_LIMIT
            if w != x:
                wraps += 1
            uj = w
            y = _decay(vj, fv) + uj + bj
            if y > U_LIMIT - 1:
                y = U_LIMIT - 1
                sats += 1
            elif y < -U_LIMIT + 1:
                y = -U_LIMIT + 1
                sats += 1
            if y > th:
                spikes[t, j] = 1
                y = 0
            else:
                spikes[t, j] = 0
            vj = y
        u[j] = uj
        v[j] = vj
        counts[j, 0] += wraps
        counts[j, 1] += sats


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
