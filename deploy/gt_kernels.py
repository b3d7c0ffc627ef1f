"""The arithmetic of a GT population, fixed and floating point: one compiled kernel per precision, shared by
``sim`` (``spikes.deploy.populations.gt``, batched) and the Lava ProcessModels (``spikes.deploy.processes.gt``,
one sample, one step per call), so both run the same operations in the same order.

Fixed point, per neuron i and step t (all int64; ``F`` fraction bits, ``V = 2**F v / vc``)::

    t < onset:  V held, outputs s = 0 and V_out = 0           (the population has not started)
    s    = V > 0                                             V_out = V (the potential s was read from)
    b    = (a_in << 6) + [t >= bias_onset] bias
    P    = sum_j Q_ij V_j;  QV = P << q_exp, or rshr(P, -q_exp) for q_exp < 0
    G    = clip(b - QV - PSI s, -(2**23 - 1), 2**23 - 1)      saturation counted
    L    = max(LAM, |G| + max(1, |G| >> 10))                  the lambda rule: margin 2**-10 (float: 1e-3)
    U    = rdiv(2**F (2**F G + L V), 2**F L + V G)            denominator > 0 because L > |G|, |V| <= 2**F
    V'   = V + rdiv(A (U - V), 4096)                          A = round(4096 a), 12-bit factor in 1..4096

``rdiv(n, d)`` (d > 0) and ``rshr(x, k) = rdiv(x, 2**k)`` round to nearest, ties away from zero: the rounding
is odd-symmetric (``-v, -g -> -u``), so the two neurons of a differential pair stay mirror images. ``U`` is the
rounded ``2**F x'`` of ``x' = (x + y) / (1 + x y)`` in [-1, 1] and ``V'`` lies between ``V`` and ``U``: ``|V| <= 2**F``
at every step without clipping. Intermediates need ``2 F + 25`` bits (``F <= 19`` keeps them in int64).

Floating point (the float ProcessModel and ``sim-float``; the same order of operations as ``gt_step``)::

    s = v > 0;  g = b - q v - i_psi s;  l = max(lam, (1 + 1e-3) |g|)
    u = vc (vc g + l v) / (v g + l vc);  v' = a u + (1 - a) v
"""
from __future__ import annotations

import numpy as np
from numba import njit

from spikes.neurons.growth_transform import LAMBDA_MARGIN   # floating point: the torch model's own

G_LIMIT = 2**23 - 1
LAMBDA_SHIFT = 10          # fixed-point margin of the lambda rule: |G| >> 10 (2**-10 ~ 1e-3)
A_ONE = 4096               # the modulation factor A = round(4096 a)
FRAC_BITS_MAX = 19         # 2 F + 25 bits of intermediates must fit in int64


@njit(cache=True, inline="always")
def rdiv(n, d):  # pragma: no cover - compiled
    """``n / d`` (d > 0) rounded to nearest, ties away from zero."""
    q = (abs(n) + d // 2) // d
    return q if n >= 0 else -q


@njit(cache=True, inline="always")
def rshift(x, e):  # pragma: no cover - compiled
    """``x * 2**e``: a left shift for e >= 0, a right shift rounding to nearest (ties away) for e < 0."""
    if e >= 0:
        return x << e
    return rdiv(x, np.int64(1) << (-e))


@njit(cache=True)
def gt_fixed_run(acc, v, q, q_exp, bias, lam, psi, frac, a, onset, bias_onset, t0, out_s, out_v,
                 counts):  # pragma: no cover - compiled
    """Fixed-point GT steps ``t0 .. t0 + T - 1`` (module docstring).

    acc (T, B, N) int64 inputs ``a_in``; v (B, N) int64 state, in place; q (N, N) int64; bias, a (N,) int64;
    out_s (T, B, N) uint8 and out_v (T, B, N) int64 written; counts (B, N, 2) += [0, saturations of G].
    """
    t_steps, batch, n = acc.shape
    one = np.int64(1) << frac
    new = np.empty(n, np.int64)
    for t in range(t_steps):
        tt = t0 + t
        for b in range(batch):
            if tt < onset:
                for i in range(n):
                    out_s[t, b, i] = 0
                    out_v[t, b, i] = 0
                continue
            for i in range(n):
                vi = v[b, i]
                si = 1 if vi > 0 else 0
                p = np.int64(0)
                for j in range(n):
                    p += q[i, j] * v[b, j]
                g = (acc[t, b, i] << 6) - rshift(p, q_exp) - psi * si
                if tt >= bias_onset:
                    g += bias[i]
                if g > G_LIMIT:
                    g = G_LIMIT
                    counts[b, i, 1] += 1
                elif g < -G_LIMIT:
                    g = -G_LIMIT
                    counts[b, i, 1] += 1
                ag = abs(g)
                margin = ag >> LAMBDA_SHIFT
                if margin < 1:
                    margin = 1
                lam_i = ag + margin
                if lam_i < lam:
                    lam_i = lam
                u = rdiv(((g << frac) + lam_i * vi) << frac, lam_i * one + vi * g)
                new[i] = vi + rdiv(a[i] * (u - vi), A_ONE)
                out_s[t, b, i] = si
                out_v[t, b, i] = vi
            for i in range(n):
                v[b, i] = new[i]


@njit(cache=True)
def gt_float_run(acc, v, q, bias, lam, vc, i_psi, a, onset, bias_onset, t0, out_s,
                 out_v):  # pragma: no cover - compiled
    """Floating-point GT steps ``t0 .. t0 + T - 1`` (module docstring): acc (T, B, N), v (B, N) in place,
    q (N, N), bias, a (N,) float64; out_s (T, B, N) uint8, out_v (T, B, N) float64 written."""
    t_steps, batch, n = acc.shape
    new = np.empty(n, np.float64)
    for t in range(t_steps):
        tt = t0 + t
        for b in range(batch):
            if tt < onset:
                for i in range(n):
                    out_s[t, b, i] = 0
                    out_v[t, b, i] = 0.0
                continue
            for i in range(n):
                vi = v[b, i]
                si = 1.0 if vi > 0 else 0.0
                p = 0.0
                for j in range(n):
                    p += q[i, j] * v[b, j]
                x = acc[t, b, i] + bias[i] if tt >= bias_onset else acc[t, b, i]
                g = x - p - i_psi * si
                lam_i = (1.0 + LAMBDA_MARGIN) * abs(g)
                if lam_i < lam:
                    lam_i = lam
                u = vc * (vc * g + lam_i * vi) / (vi * g + lam_i * vc)
                new[i] = a[i] * u + (1.0 - a[i]) * vi
                out_s[t, b, i] = 1 if vi > 0 else 0
                out_v[t, b, i] = vi
            for i in range(n):
                v[b, i] = new[i]


def warm(fixed: bool) -> None:
    """Compile (or load from numba's cache) the kernel in this process, so that Lava's forked ProcessModels
    inherit it instead of each loading it again."""
    z = np.zeros((1, 1, 1), np.int64 if fixed else np.float64)
    v, q, one = z[0].copy(), z[0].copy(), z[0, 0].copy()
    s, o = np.zeros((1, 1, 1), np.uint8), z.copy()
    if fixed:
        gt_fixed_run(z, v, q, 0, one, 1, 0, 4, one + 1, 0, 0, 0, s, o, np.zeros((1, 1, 2), np.int64))
    else:
        gt_float_run(z, v, q, one, 1.0, 1.0, 0.0, one + 1.0, 0, 0, 0, s, o)
