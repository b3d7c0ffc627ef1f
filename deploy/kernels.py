"""Lava's LIF update, fixed point (bit-exact with ``PyLifModelBitAcc``) and floating point, over a sequence.

Fixed point, per step and neuron (du, dv 12 bit; states 24 bit)::

    u = sign(u (4096 - du - 1)) (|u (4096 - du - 1)| >> 12) + (a << 6)     (int32 arithmetic: wraps at 2**32)
    u = u - 2**24 if u > 2**23;  u = u + 2**24 if u <= -2**23      (Lava's single wrap)
    v = sign(v (4096 - dv)) (|v (4096 - dv)| >> 12) + u + bias
    v = clip(v, -(2**23 - 1), 2**23 - 1)
    s = v > vth << 6;  v[s] = 0

Floating point: ``u = u (1 - du) + a;  v = v (1 - dv) + u + bias;  s = v > vth;  v[s] = 0``.

One branch-free neuron function (``_neuron``) serves every kernel; ``_lif_block`` runs it over a contiguous
block of neurons (it vectorises) and is shared by the fused event-driven kernels: ``dense_lif_events``,
``sparse_lif_events`` and ``conv_lif_events`` accumulate only the non-zero inputs (``nonzero_events``) of
each step into int32 accumulators, then update the block. The synaptic input of a projection is
``a = (acc << shl) >> shr`` (int64): Dense/Sparse ``(shl, shr) = (e, 0)`` or ``(0, -e)`` for the weight
exponent e; Conv ``(40, 40)``, Lava's signed 24-bit wrap. int32 accumulators are exact whenever only the low
bits of the sum matter (``shr == 0`` and Conv: u keeps the sum modulo 2**32, Conv modulo 2**24); for
``shr > 0`` the caller checks that the sum cannot leave int32. The step functions are the numpy
equivalents used with recurrent projections.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

U_LIMIT = 2**23
INT32 = 2**31
CONV_WRAP = 40      # (a << 40) >> 40: sign-extend the low 24 bits of an int64


@njit(cache=True, inline="always")
def _decay(x, factor):  # pragma: no cover - compiled
    """sign(x f) (|x f| >> 12), branch-free (rounds toward zero); int64."""
    p = x * factor
    return (p + ((p >> 63) & 4095)) >> 12


@njit(cache=True, inline="always")
def _neuron(a, u, v, bias, fu, fv, th):  # pragma: no cover - compiled
    """One fixed-point neuron step (int64 in, selects only): returns (spike, u, v, u wrapped, v saturated)."""
    x = _decay(np.int64(u), fu) + (a << 6)
    x = (x << 32) >> 32                                  # Lava's int32 arithmetic wraps
    w = x - 2 * U_LIMIT if x > U_LIMIT else x
    w = x + 2 * U_LIMIT if w <= -U_LIMIT else w
    y = _decay(np.int64(v), fv) + w + bias
    c = min(max(y, -U_LIMIT + 1), U_LIMIT - 1)
    s = c > th
    return s, w, 0 if s else c, w != x, c != y


@njit(cache=True, inline="always")
def _lif_block(acc, shl, shr, u, v, bias, fu, fv, th, spikes):  # pragma: no cover - compiled
    """The neurons of one block, one step: a = (acc << shl) >> shr; u, v, bias, spikes (n,) views updated in
    place; returns (u wraps, v saturations)."""
    wraps = 0
    sats = 0
    for j in range(acc.shape[0]):
        a = (np.int64(acc[j]) << shl) >> shr
        s, uu, vv, wr, sa = _neuron(a, u[j], v[j], bias[j], fu, fv, th)
        spikes[j] = s
        u[j] = uu
        v[j] = vv
        wraps += wr
        sats += sa
    return wraps, sats


@njit(cache=True, inline="always")
def _row_events(src, r, idx, val, p):  # pragma: no cover - compiled
    """Append the non-zero entries of row r at idx/val[p:]; returns (sum of |x|, count of x != 1)."""
    total = 0
    other = 0
    for k in range(src.shape[1]):
        x = src[r, k]
        if x != 0:
            xi = np.int64(x)
            idx[p] = k
            val[p] = np.int32(xi)
            total += abs(xi)
            other += xi != 1
            p += 1
    return total, other


@njit(cache=True, inline="always")
def _row_events_bytes(words, src, r, idx, val, p):  # pragma: no cover - compiled
    """As ``_row_events`` for a 1-byte dtype, 8 entries at a time: ``words`` (R, K / 8) uint64 view of ``src``;
    zero words are skipped and the set bytes of the others found by counting trailing zeros."""
    total = 0
    other = 0
    for i in range(words.shape[1]):
        w = words[r, i]
        while w != 0:
            k = 8 * i + (trailing_zeros(w) >> 3)
            xi = np.int64(src[r, k])
            idx[p] = k
            val[p] = np.int32(xi)
            total += abs(xi)
            other += xi != 1
            p += 1
            w &= ~(np.uint64(255) << np.uint64(8 * (k - 8 * i)))
    return total, other


@njit(cache=True, parallel=True)
def nonzero_events(src, words):  # pragma: no cover - compiled
    """The non-zero entries of each row of ``src`` (R, K), any integer-valued dtype: row r holds
    ``idx[ptr[r]:ptr[r + 1]]`` (int32 columns) with values ``val`` (int32, modulo 2**32). ``words``: a (R, K / 8)
    uint64 view of a 1-byte ``src`` (scanned 8 entries at a time), else an empty (R, 0) array. Also returns
    whether every value is 1 and the largest sum of |values| over a row (int64)."""
    rows, k_in = src.shape
    ptr = np.zeros(rows + 1, np.int64)
    for r in prange(rows):
        c = 0
        for k in range(k_in):
            c += src[r, k] != 0
        ptr[r + 1] = c
    for r in range(rows):
        ptr[r + 1] += ptr[r]
    idx = np.empty(ptr[rows], np.int32)
    val = np.empty(ptr[rows], np.int32)
    sums = np.zeros(rows, np.int64)
    others = np.zeros(rows, np.int64)
    for r in prange(rows):
        if words.shape[1] > 0:
            sums[r], others[r] = _row_events_bytes(words, src, r, idx, val, ptr[r])
        else:
            sums[r], others[r] = _row_events(src, r, idx, val, ptr[r])
    return ptr, idx, val, others.sum() == 0, sums.max() if rows else 0


def events(x: np.ndarray) -> tuple:
    """``nonzero_events`` of ``x`` (R, *shape) flattened per row (8 at a time for 1-byte dtypes)."""
    src = np.ascontiguousarray(x).reshape(x.shape[0], -1)
    if src.dtype.itemsize == 1 and src.shape[1] % 8 == 0:
        words = src.view(np.uint64)
    else:
        words = np.zeros((src.shape[0], 0), np.uint64)
    return nonzero_events(src.view(np.uint8) if src.dtype == np.bool_ else src, words)


@njit(cache=True, parallel=True)
def dense_lif_events(ptr, idx, val, binary, wt, shl, shr, delay, du, dv, vth, bias, u, v, spikes,
                     block):  # pragma: no cover - compiled
    """Event-driven Dense + LIF: ``acc[t, b] = sum over events e of row (t - delay) B + b of val[e] wt[idx[e]]``
    (wt = W.T (K, N) int32; ``binary``: all values are 1). u, v (B, N) int64 in place; spikes (T, B, N) uint8.
    Work items are (neuron block, sample), block-major, so a thread keeps its weight columns in cache.
    Returns the (u wraps, v saturations) totals."""
    t_steps, batch, n = spikes.shape
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    n_blocks = (n + block - 1) // block
    counts = np.zeros((n_blocks * batch, 2), np.int64)
    for item in prange(n_blocks * batch):
        blk = item // batch
        b = item - blk * batch
        lo = blk * block
        hi = min(n, lo + block)
        acc = np.empty(hi - lo, np.int32)
        ub, vb, bb = u[b, lo:hi], v[b, lo:hi], bias[lo:hi]
        for t in range(t_steps):
            acc[:] = 0
            if t >= delay:
                row = (t - delay) * batch + b
                for e in range(ptr[row], ptr[row + 1]):
                    wk = wt[idx[e], lo:hi]
                    if binary:
                        for j in range(hi - lo):
                            acc[j] += wk[j]
                    else:
                        x = val[e]
                        for j in range(hi - lo):
                            acc[j] += x * wk[j]
            wr, sa = _lif_block(acc, shl, shr, ub, vb, bb, fu, fv, th, spikes[t, b, lo:hi])
            counts[item, 0] += wr
            counts[item, 1] += sa
    return counts[:, 0].sum(), counts[:, 1].sum()


@njit(cache=True, parallel=True)
def sparse_lif_events(ptr, idx, val, binary, col_ptr, rows, data, shl, shr, delay, du, dv, vth, bias, u, v,
                      spikes):  # pragma: no cover - compiled
    """Event-driven Sparse + LIF: W in CSC (``col_ptr``, ``rows`` int32, ``data`` int32): an event at input k
    adds ``val data[col_ptr[k]:col_ptr[k+1]]`` to the listed rows. Otherwise as ``dense_lif_events``
    (parallel over samples)."""
    t_steps, batch, n = spikes.shape
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    counts = np.zeros((batch, 2), np.int64)
    for b in prange(batch):
        acc = np.empty(n, np.int32)
        for t in range(t_steps):
            acc[:] = 0
            if t >= delay:
                row = (t - delay) * batch + b
                for e in range(ptr[row], ptr[row + 1]):
                    k = idx[e]
                    x = 1 if binary else val[e]
                    for q in range(col_ptr[k], col_ptr[k + 1]):
                        acc[rows[q]] += x * data[q]
            wr, sa = _lif_block(acc, shl, shr, u[b], v[b], bias, fu, fv, th, spikes[t, b])
            counts[b, 0] += wr
            counts[b, 1] += sa
    return counts[:, 0].sum(), counts[:, 1].sum()


@njit(cache=True, parallel=True)
def transpose_int32(w):  # pragma: no cover - compiled
    """(W.T as a C-contiguous int32 (K, N) array, max |W|) of an integer (N, K) matrix, in 64 x 64 tiles."""
    n, k_in = w.shape
    wt = np.empty((k_in, n), np.int32)
    tile = 64
    tn = (n + tile - 1) // tile
    tk = (k_in + tile - 1) // tile
    top = np.zeros(tn * tk + 1, np.int64)
    for it in prange(tn * tk):
        j0 = (it // tk) * tile
        k0 = (it % tk) * tile
        m = 0
        for k in range(k0, min(k_in, k0 + tile)):
            for j in range(j0, min(n, j0 + tile)):
                x = np.int64(w[j, k])
                wt[k, j] = np.int32(x)
                m = max(m, abs(x))
        top[it] = m
    return wt, top.max()


@njit(cache=True)
def conv_runs(h, w, ho, wo, kh, kw, stride, pad, dil, c_out, cout_g):  # pragma: no cover - compiled
    """Where an input at position q = y w + x lands in a channels-last (Ho, Wo, Cout) accumulator: taps with
    ``o = (i + pad - k dil) / stride`` integer and in range along both axes, as runs ``acc[start:start + n] +=
    x wc[c, wofs:wofs + n]`` (entries ``ptr[q]:ptr[q + 1]``; add ``g cout_g`` to start for group g). ``wc`` is
    (C_in, kH, kW, Cout / groups) with the kW axis flipped, so with stride 1 the taps of one kernel row that
    reach consecutive output pixels merge into one run (groups = 1)."""
    ptr = np.zeros(h * w + 1, np.int64)
    size = h * w * kh * kw
    start = np.empty(size, np.int32)
    wofs = np.empty(size, np.int32)
    length = np.empty(size, np.int32)
    m = 0
    for y in range(h):
        for x in range(w):
            first = m
            for ky in range(kh):
                ny = y + pad[0] - ky * dil[0]
                oy = ny // stride[0]
                if ny < 0 or ny != oy * stride[0] or oy >= ho:
                    continue
                for kk in range(kw):
                    nx = x + pad[1] - (kw - 1 - kk) * dil[1]
                    ox = nx // stride[1]
                    if nx < 0 or nx != ox * stride[1] or ox >= wo:
                        continue
                    at = (oy * wo + ox) * c_out
                    wo_k = (ky * kw + kk) * cout_g
                    if (m > first and cout_g == c_out and start[m - 1] + length[m - 1] == at
                            and wofs[m - 1] + length[m - 1] == wo_k):
                        length[m - 1] += cout_g
                    else:
                        start[m] = at
                        wofs[m] = wo_k
                        length[m] = cout_g
                        m += 1
            ptr[y * w + x + 1] = m
    return ptr, start[:m].copy(), wofs[:m].copy(), length[:m].copy()


@njit(cache=True, inline="always")
def _channels_last(x, c, plane, out):  # pragma: no cover - compiled
    """out (plane, c) flat = x (c, plane) flat."""
    for p in range(plane):
        for o in range(c):
            out[p * c + o] = x[o * plane + p]


@njit(cache=True, inline="always")
def _channels_first(x, c, plane, out):  # pragma: no cover - compiled
    """out (c, plane) flat = x (plane, c) flat."""
    for o in range(c):
        for p in range(plane):
            out[o * plane + p] = x[p * c + o]


@njit(cache=True, parallel=True)
def conv_lif_events(ptr, idx, val, binary, hw_in, c_out, groups, wc, run_ptr, run_start, run_wofs, run_len, delay,
                    du, dv, vth, bias, u, v, spikes):  # pragma: no cover - compiled
    """Event-driven Conv (Lava: 24-bit wrap) + LIF. Events index the flat (C, H, W) input (ascending within a
    row; ``hw_in`` = H W); weights ``wc`` and runs from ``conv_runs``. The accumulator is channels-last
    ((Ho, Wo, Cout): an event adds a few contiguous runs), and so is the neuron update (``_lif_block``);
    spikes and the final u, v are stored in flat (Cout, Ho, Wo) order. Parallel over samples. Returns the
    (u wraps, v saturations) totals."""
    t_steps, batch, n = spikes.shape
    cin_g = wc.shape[0] // groups
    cout_g = c_out // groups
    plane = n // c_out
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    bias_cl = np.empty(n, np.int64)
    _channels_last(bias, c_out, plane, bias_cl)
    counts = np.zeros((batch, 2), np.int64)
    for b in prange(batch):
        acc = np.zeros(n, np.int32)
        s_cl = np.empty(n, np.uint8)
        u_cl = np.empty(n, np.int64)
        v_cl = np.empty(n, np.int64)
        _channels_last(u[b], c_out, plane, u_cl)
        _channels_last(v[b], c_out, plane, v_cl)
        for t in range(t_steps):
            if t >= delay:
                row = (t - delay) * batch + b
                c = 0
                c_end = hw_in
                for e in range(ptr[row], ptr[row + 1]):
                    k = idx[e]
                    while k >= c_end:
                        c += 1
                        c_end += hw_in
                    q = k - (c_end - hw_in)
                    at = (c // cin_g) * cout_g
                    x_val = val[e]
                    w_c = wc[c]
                    for r in range(run_ptr[q], run_ptr[q + 1]):
                        m = run_len[r]
                        dst = acc[at + run_start[r]:at + run_start[r] + m]
                        src = w_c[run_wofs[r]:run_wofs[r] + m]
                        if binary:
                            for j in range(m):
                                dst[j] += src[j]
                        else:
                            for j in range(m):
                                dst[j] += x_val * src[j]
            wr, sa = _lif_block(acc, CONV_WRAP, CONV_WRAP, u_cl, v_cl, bias_cl, fu, fv, th, s_cl)
            counts[b, 0] += wr
            counts[b, 1] += sa
            acc[:] = 0
            _channels_first(s_cl, c_out, plane, spikes[t, b])
        _channels_first(u_cl, c_out, plane, u[b])
        _channels_first(v_cl, c_out, plane, v[b])
    return counts[:, 0].sum(), counts[:, 1].sum()


@njit(cache=True, parallel=True)
def integer_check(x):  # pragma: no cover - compiled
    """(all entries of the flat array ``x`` are finite integers, max |x|), in one parallel pass."""
    n = x.shape[0]
    chunks = 64
    bad = np.zeros(chunks, np.int64)
    top = np.zeros(chunks, np.float64)
    for c in prange(chunks):
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        nb = 0
        m = 0.0
        for i in range(lo, hi):
            f = np.float64(x[i])
            nb += (f - np.floor(f)) != 0.0
            m = max(m, abs(f))
        bad[c] = nb
        top[c] = m
    return bad.sum() == 0, top.max()


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
                s, uu, vv, wr, sa = _neuron(a[t, j], u[j], v[j], bias[j], fu, fv, th)
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
