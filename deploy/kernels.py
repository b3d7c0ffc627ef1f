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
``sparse_lif_events`` and ``conv_lif_events`` find the non-zero inputs of each step (``_events``: 0/1
spikes packed 64 to a word by the kernel that made them, ``_pack_bits``), accumulate only those into int32
accumulators, then update the block. They release the GIL and share their work items between threads
through an atomic counter (``run_items``). The synaptic input of a projection is
``a = (acc << shl) >> shr`` (int64): Dense/Sparse ``(shl, shr) = (e, 0)`` or ``(0, -e)`` for the weight
exponent e; Conv ``(40, 40)``, Lava's signed 24-bit wrap. int32 accumulators are exact whenever only the low
bits of the sum matter (``shr == 0`` and Conv: u keeps the sum modulo 2**32, Conv modulo 2**24); for
``shr > 0`` the caller checks that the sum cannot leave int32. The step functions are the numpy
equivalents used with recurrent projections.
"""
from __future__ import annotations

import os
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numba
import numpy as np
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.cpython.unsafe.numbers import trailing_zeros

from spikes.deploy.fixed_point import decay_fixed

PARALLEL_MIN_WORK = 2**20   # neuron-steps (~1 ms on one thread) below which a kernel runs on one thread

U_LIMIT = 2**23
INT32 = 2**31
CONV_WRAP = 8       # (a << 8) >> 8: sign-extend the low 24 bits of an int32
PACK_MAGIC = np.uint64(0x0102040810204080)


@intrinsic
def _fetch_add(typingctx, arr, i, value):  # pragma: no cover - compiled
    """Atomically ``arr[i] += value``, returning the old value (int64 array)."""
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1]])
        return builder.atomic_rmw("add", ptr, context.cast(builder, args[2], signature.args[2], types.int64),
                                  "seq_cst")
    return types.int64(arr, i, value), codegen


_POOL: tuple[int, ThreadPoolExecutor] | None = None


def run_items(kernel, n_items: int, work: int, *args) -> tuple[int, int]:
    """Run ``kernel(claim, counts, *args)``, a GIL-free loop over ``n_items`` work items, on this thread and up
    to ``numba.get_num_threads() - 1`` helper threads; returns the summed (u wraps, v saturations).

    Threads claim items one at a time from an atomic counter (``claim[0]``; ``claim[1]`` counts finished
    items), so none waits for a thread that has not got a core: on a loaded machine numba's static parallel
    split waited up to 40 ms for its second thread (a 7 ms readout took 40 ms on two threads). Below ``work``
    = ``PARALLEL_MIN_WORK`` neuron-steps no helper is woken. Integer results do not depend on the split."""
    global _POOL
    claim = np.zeros(2, np.int64)
    counts = np.zeros((n_items, 2), np.int64)
    helpers = min(numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS) - 1 if work >= PARALLEL_MIN_WORK else 0
    futures = []
    if helpers > 0 and n_items > 1:
        if _POOL is None or _POOL[0] != os.getpid():         # a forked child (Lava forks) has no threads
            _POOL = (os.getpid(), ThreadPoolExecutor(numba.config.NUMBA_NUM_THREADS - 1, "spikes-sim"))
        futures = [_POOL[1].submit(kernel, claim, counts, *args) for _ in range(min(helpers, n_items - 1))]
    kernel(claim, counts, *args)
    while claim[1] < n_items:            # a helper is finishing its last item: its future completes right after
        done, _ = wait(futures, timeout=1e-3, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                raise f.exception()
    return int(counts[:, 0].sum()), int(counts[:, 1].sum())


@njit(cache=True, inline="always")
def _next_item(claim, n_items):  # pragma: no cover - compiled
    """The next unclaimed item, or -1."""
    item = _fetch_add(claim, 0, 1)
    return item if item < n_items else -1


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
def _decay32(x, f):  # pragma: no cover - compiled
    """sign(x) (|x| f >> 12) in int32 lanes for |x| <= 2**23, f <= 4096: with |x| = 4096 h + l,
    (|x| f) >> 12 = h f + ((l f) >> 12) and both products stay below 2**24 (the int64 product of ``_decay``
    needs 35 bits; int32 lanes are twice as many per vector)."""
    s = np.int32(x >> 31)
    m = np.int32((x ^ s) - s)
    r = np.int32(np.int32(m >> 12) * f + np.int32(np.int32((m & 4095) * f) >> 12))
    return np.int32((r ^ s) - s)


@njit(cache=True, inline="always")
def _neuron32(a6, u, v, bias, fu, fv, th):  # pragma: no cover - compiled
    """``_neuron`` in int32 lanes: ``a6`` = (a << 6) modulo 2**32; u, v within Lava's 24 bits, |bias| < 2**30.
    The int32 sum ``decay(u) + a6`` wraps exactly as Lava's int32 arithmetic does."""
    x = np.int32(_decay32(u, fu) + a6)
    w = np.int32(x - 2 * U_LIMIT) if x > U_LIMIT else x
    w = np.int32(w + 2 * U_LIMIT) if w <= -U_LIMIT else w
    y = np.int32(_decay32(v, fv) + w + bias)
    c = min(max(y, np.int32(-U_LIMIT + 1)), np.int32(U_LIMIT - 1))
    s = c > th
    return s, w, np.int32(0) if s else c, w != x, c != y


@njit(cache=True, inline="always")
def _lif_block(acc, shl, shr, u, v, bias, fu, fv, th, spikes):  # pragma: no cover - compiled
    """The neurons of one block, one step, in int32 lanes: a = (acc << shl) >> shr (int32: Dense/Sparse
    (e, 0) or (0, -e), Conv (8, 8) sign-extends the low 24 bits), ``_neuron32``; acc is zeroed as it is read
    (ready for the next step); u, v, bias (int32), spikes (n,) views updated in place; returns (u wraps,
    v saturations)."""
    wraps = 0
    sats = 0
    fu = np.int32(fu)
    fv = np.int32(fv)
    th = np.int32(th)
    for j in range(acc.shape[0]):
        a = np.int32(np.int32(acc[j] << shl) >> shr)
        acc[j] = 0
        s, uu, vv, wr, sa = _neuron32(np.int32(a << 6), u[j], v[j], bias[j], fu, fv, th)
        spikes[j] = s
        u[j] = uu
        v[j] = vv
        wraps += wr
        sats += sa
    return wraps, sats


@njit(cache=True, inline="always")
def _scan(src, words, r, idx, val):  # pragma: no cover - compiled
    """The non-zero entries of row r of ``src`` (R, K), any integer-valued dtype, into ``idx`` (column) and
    ``val`` (value modulo 2**32), both int32; returns their count. ``words`` (R, K // 8) uint64 views the first
    K // 8 * 8 columns of a 1-byte ``src`` (zero words are skipped, set bytes found by counting trailing
    zeros), else it is (R, 0)."""
    p = 0
    start = 8 * words.shape[1]
    for i in range(words.shape[1]):
        w = words[r, i]
        while w != 0:
            z = trailing_zeros(w) & 56
            k = 8 * i + (z >> 3)
            idx[p] = k
            val[p] = np.int32(np.int64(src[r, k]))
            p += 1
            w &= ~(np.uint64(255) << np.uint64(z))
    for k in range(start, src.shape[1]):
        x = src[r, k]
        if x != 0:
            idx[p] = k
            val[p] = np.int32(np.int64(x))
            p += 1
    return p


def words_of(src: np.ndarray) -> np.ndarray:
    """The uint64 view ``_scan`` uses for a C-contiguous 2-D array of a 1-byte dtype (else an (R, 0) array)."""
    k8 = src.shape[1] // 8 * 8
    if src.dtype.itemsize != 1 or k8 == 0:
        return np.zeros((src.shape[0], 0), np.uint64)
    return src.view(np.uint8)[:, :k8].view(np.uint64)


@njit(cache=True, inline="always")
def _scan_bits(bits, r, idx, val):  # pragma: no cover - compiled
    """As ``_scan`` for a 0/1 row packed into ``bits`` (R, ceil(K / 64)) uint64 (bit k of word k // 64)."""
    p = 0
    for i in range(bits.shape[1]):
        w = bits[r, i]
        while w != 0:
            idx[p] = 64 * i + trailing_zeros(w)
            val[p] = 1
            p += 1
            w &= w - np.uint64(1)
    return p


@njit(cache=True, inline="always")
def _events(src, words, bits, r, idx, val):  # pragma: no cover - compiled
    """The non-zero inputs of row r: from ``bits`` if it has columns (``_scan_bits``), else ``_scan``."""
    if bits.shape[1] > 0:
        return _scan_bits(bits, r, idx, val)
    return _scan(src, words, r, idx, val)


@njit(cache=True, inline="always")
def _pack_bits(s, lo, hi, bits):  # pragma: no cover - compiled
    """Pack the 0/1 bytes s[lo:hi] into ``bits`` (bit k of word k // 64; lo a multiple of 64): 8 bytes at a
    time, ``(w * 0x0102040810204080) >> 56`` gathers their low bits (one 8-byte load each when len(s) is a
    multiple of 8, else assembled byte by byte)."""
    if s.shape[0] % 8 == 0:
        s64 = s.view(np.uint64)
        for i in range(lo // 64, (hi + 63) // 64):
            word = np.uint64(0)
            for g in range(min(8, (hi - 64 * i) // 8)):
                word |= ((s64[8 * i + g] * PACK_MAGIC) >> np.uint64(56)) << np.uint64(8 * g)
            bits[i] = word
        return
    for i in range(lo // 64, (hi + 63) // 64):
        word = np.uint64(0)
        for g in range(8):
            at = 64 * i + 8 * g
            if at + 8 <= hi:
                w = np.uint64(s[at])
                for m in range(1, 8):
                    w |= np.uint64(s[at + m]) << np.uint64(8 * m)
                word |= ((w * PACK_MAGIC) >> np.uint64(56)) << np.uint64(8 * g)
            else:
                for m in range(at, min(hi, at + 8)):
                    word |= np.uint64(s[m]) << np.uint64(m - 64 * i)
        bits[i] = word


@njit(cache=True, inline="always")
def _add_rows(acc, wt, lo, hi, idx, val, count, binary):  # pragma: no cover - compiled
    """acc += sum over e < count of val[e] wt[idx[e], lo:hi] (``binary``: every val is 1, no multiplies), eight
    rows per pass over acc (fewer acc loads/stores and loop set-ups per row)."""
    m = hi - lo
    e = 0
    if binary:
        while e + 8 <= count:
            w0, w1, w2, w3 = wt[idx[e], lo:hi], wt[idx[e + 1], lo:hi], wt[idx[e + 2], lo:hi], wt[idx[e + 3], lo:hi]
            w4, w5, w6, w7 = wt[idx[e + 4], lo:hi], wt[idx[e + 5], lo:hi], wt[idx[e + 6], lo:hi], wt[idx[e + 7], lo:hi]
            for j in range(m):
                acc[j] += ((np.int32(w0[j]) + w1[j]) + (np.int32(w2[j]) + w3[j])) + \
                    ((np.int32(w4[j]) + w5[j]) + (np.int32(w6[j]) + w7[j]))
            e += 8
    while e + 8 <= count:
        w0, w1, w2, w3 = wt[idx[e], lo:hi], wt[idx[e + 1], lo:hi], wt[idx[e + 2], lo:hi], wt[idx[e + 3], lo:hi]
        w4, w5, w6, w7 = wt[idx[e + 4], lo:hi], wt[idx[e + 5], lo:hi], wt[idx[e + 6], lo:hi], wt[idx[e + 7], lo:hi]
        x0, x1, x2, x3, x4, x5, x6, x7 = val[e], val[e + 1], val[e + 2], val[e + 3], val[e + 4], val[e + 5], \
            val[e + 6], val[e + 7]
        for j in range(m):
            acc[j] += ((x0 * w0[j] + x1 * w1[j]) + (x2 * w2[j] + x3 * w3[j])) + \
                ((x4 * w4[j] + x5 * w5[j]) + (x6 * w6[j] + x7 * w7[j]))
        e += 8
    while e + 2 <= count:
        w0, w1, x0, x1 = wt[idx[e], lo:hi], wt[idx[e + 1], lo:hi], val[e], val[e + 1]
        for j in range(m):
            acc[j] += x0 * w0[j] + x1 * w1[j]
        e += 2
    if e < count:
        w0, x0 = wt[idx[e], lo:hi], val[e]
        for j in range(m):
            acc[j] += x0 * w0[j]


@njit(cache=True, nogil=True)
def dense_lif_events(claim, counts, src, words, bits, delay, wt, shl, shr, du, dv, vth, bias, u, v, spikes, out_bits,
                     block):  # pragma: no cover - compiled
    """Event-driven Dense + LIF: ``acc[t, b] = sum over non-zero x = src[(t - delay) B + b, k] of x wt[k]``
    (src (T B, K), see ``_events``; wt = W.T (K, N') int16, Lava's weights have 8 bits; N' >= N: zero columns
    pad a small layer to a full vector), then ``_lif_block``. u, v (B, N) int32 in place; spikes (T, B, N) uint8
    and their packed bits ``out_bits`` (T B, ceil(N / 64)) out. Work items (claimed through ``claim``, see
    ``run_items``; (u wraps, v saturations) into ``counts[item]``) are (neuron block, sample), block-major, so
    the threads share the weight columns in cache (``block``: a multiple of 64 unless it covers N)."""
    t_steps, batch, n = spikes.shape
    k_in = src.shape[1]
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    while True:
        item = _next_item(claim, counts.shape[0])
        if item < 0:
            break
        blk = item // batch
        b = item - blk * batch
        lo = blk * block
        hi = min(n, lo + block)
        hi_acc = min(wt.shape[1], lo + block)
        acc = np.zeros(hi_acc - lo, np.int32)       # zeroed again by _lif_block as it reads it
        idx = np.empty(k_in, np.int32)
        val = np.empty(k_in, np.int32)
        ub, vb, bb = u[b, lo:hi], v[b, lo:hi], bias[lo:hi]
        wraps = 0
        sats = 0
        for t in range(t_steps):
            if t >= delay:
                _add_rows(acc, wt, lo, hi_acc, idx, val, _events(src, words, bits, (t - delay) * batch + b, idx, val),
                          bits.shape[1] > 0)
            wr, sa = _lif_block(acc[:hi - lo], shl, shr, ub, vb, bb, fu, fv, th, spikes[t, b, lo:hi])
            acc[hi - lo:] = 0                            # the zero columns that pad a small layer
            _pack_bits(spikes[t, b], lo, hi, out_bits[t * batch + b])
            wraps += wr
            sats += sa
        counts[item, 0] = wraps
        counts[item, 1] = sats
        _fetch_add(claim, 1, 1)


@njit(cache=True, nogil=True)
def sparse_lif_events(claim, counts, src, words, bits, delay, col_ptr, rows, data, shl, shr, du, dv, vth, bias, u, v,
                      spikes, out_bits):  # pragma: no cover - compiled
    """Event-driven Sparse + LIF: W in CSC (``col_ptr``, ``rows`` int32, ``data`` int16): a non-zero input x at
    k adds ``x data[col_ptr[k]:col_ptr[k + 1]]`` to the listed rows. Otherwise as ``dense_lif_events``, with
    one work item per sample."""
    t_steps, batch, n = spikes.shape
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    while True:
        b = _next_item(claim, counts.shape[0])
        if b < 0:
            break
        acc = np.zeros(n, np.int32)
        idx = np.empty(src.shape[1], np.int32)
        val = np.empty(src.shape[1], np.int32)
        wraps = 0
        sats = 0
        for t in range(t_steps):
            if t >= delay:
                for e in range(_events(src, words, bits, (t - delay) * batch + b, idx, val)):
                    k = idx[e]
                    x = val[e]
                    for q in range(col_ptr[k], col_ptr[k + 1]):
                        acc[rows[q]] += x * data[q]
            wr, sa = _lif_block(acc, shl, shr, u[b], v[b], bias, fu, fv, th, spikes[t, b])
            _pack_bits(spikes[t, b], 0, n, out_bits[t * batch + b])
            wraps += wr
            sats += sa
        counts[b, 0] = wraps
        counts[b, 1] = sats
        _fetch_add(claim, 1, 1)


@njit(cache=True)
def transpose_int16(w):  # pragma: no cover - compiled
    """(W.T as a C-contiguous int16 (K, N) array, max |W|, max over rows of sum |W|) of an integer (N, K)
    matrix (entries beyond int16 wrap: check max |W|), in tiles of 16 rows. Serial: about 1 ms per million
    weights, less than a parallel launch can cost on a loaded machine."""
    n, k_in = w.shape
    wt = np.empty((k_in, n), np.int16)
    tile = 16
    n_tiles = (n + tile - 1) // tile
    top = np.zeros(n_tiles + 1, np.int64)
    l1 = np.zeros(n_tiles + 1, np.int64)
    for it in range(n_tiles):
        m = 0
        s = 0
        for j in range(it * tile, min(n, it * tile + tile)):
            r = 0
            for k in range(k_in):
                x = np.int64(w[j, k])
                wt[k, j] = np.int16(x)
                m = max(m, abs(x))
                r += abs(x)
            s = max(s, r)
        top[it] = m
        l1[it] = s
    return wt, top.max(), l1.max()


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


SPREAD_BITS = np.uint64(0x0101010101010101)
SPREAD_PICK = np.uint64(0x8040201008040201)
SPREAD_CARRY = np.uint64(0x00406070787C7E7F)
SPREAD_HIGH = np.uint64(0x8080808080808080)


@njit(cache=True, inline="always")
def _channels_first_bits(s_cl, c, plane, out, bits):  # pragma: no cover - compiled
    """``_channels_first`` of 0/1 bytes and ``_pack_bits`` of the result in one pass, for c % 8 == 0 and
    plane % 64 == 0: eight pixels' 8-channel words w_i (one byte per channel) give OR_i (w_i << i), whose
    byte o is channel o's 8-pixel mask m; ``((m 0x01..01 & 0x8040201008040201) + 0x00406070787C7E7F) &
    0x80..80 >> 7`` spreads m back into eight 0/1 bytes (each byte's sum reaches 0x80 only if its bit was set)."""
    s64 = s_cl.view(np.uint64)
    o64 = out.view(np.uint64)
    cw = c // 8
    for g in range(cw):
        for p0 in range(0, plane, 64):
            w0 = w1 = w2 = w3 = w4 = w5 = w6 = w7 = np.uint64(0)
            for k in range(8):
                x = np.uint64(0)
                base = (p0 + 8 * k) * cw + g
                for i in range(8):
                    x |= s64[base + i * cw] << np.uint64(i)
                sh = np.uint64(8 * k)
                w0 |= (x & np.uint64(255)) << sh
                w1 |= ((x >> np.uint64(8)) & np.uint64(255)) << sh
                w2 |= ((x >> np.uint64(16)) & np.uint64(255)) << sh
                w3 |= ((x >> np.uint64(24)) & np.uint64(255)) << sh
                w4 |= ((x >> np.uint64(32)) & np.uint64(255)) << sh
                w5 |= ((x >> np.uint64(40)) & np.uint64(255)) << sh
                w6 |= ((x >> np.uint64(48)) & np.uint64(255)) << sh
                w7 |= (x >> np.uint64(56)) << sh
                at = (8 * g * plane + p0 + 8 * k) // 8
                for o in range(8):
                    m = (x >> np.uint64(8 * o)) & np.uint64(255)
                    y = ((m * SPREAD_BITS) & SPREAD_PICK) + SPREAD_CARRY
                    o64[at + o * (plane // 8)] = (y & SPREAD_HIGH) >> np.uint64(7)
            at = (8 * g * plane + p0) // 64
            step = plane // 64
            bits[at] = w0
            bits[at + step] = w1
            bits[at + 2 * step] = w2
            bits[at + 3 * step] = w3
            bits[at + 4 * step] = w4
            bits[at + 5 * step] = w5
            bits[at + 6 * step] = w6
            bits[at + 7 * step] = w7


@njit(cache=True, nogil=True)
def conv_lif_events(claim, counts, src, words, bits, delay, hw_in, c_out, groups, wc, shl, run_ptr, run_start,
                    run_wofs, run_len, du, dv, vth, bias, u, v, spikes, out_bits):  # pragma: no cover - compiled
    """Event-driven Conv (Lava: 24-bit wrap) + LIF. src (T B, C H W) flat (C, H, W) inputs (see ``_events``;
    ``hw_in`` = H W); weights ``wc`` (int16, ``shl`` = 8, or int8 halves, ``shl`` = 9: the sum is doubled
    before its low 24 bits are sign-extended) and runs from ``conv_runs``. The accumulator is channels-last
    ((Ho, Wo, Cout): an event adds a few contiguous runs), and so is the neuron update (``_lif_block``);
    spikes (and ``out_bits``, as in ``dense_lif_events``) and the final u, v are stored in flat (Cout, Ho, Wo)
    order. One work item per sample, as in ``sparse_lif_events``."""
    t_steps, batch, n = spikes.shape
    cin_g = wc.shape[0] // groups
    cout_g = c_out // groups
    plane = n // c_out
    fu = 4096 - du - 1
    fv = 4096 - dv
    th = vth << 6
    fast_order = c_out % 8 == 0 and plane % 64 == 0
    bias_cl = np.empty(n, np.int32)
    _channels_last(bias, c_out, plane, bias_cl)
    while True:
        b = _next_item(claim, counts.shape[0])
        if b < 0:
            break
        wraps = 0
        sats = 0
        acc = np.zeros(n, np.int32)
        idx = np.empty(src.shape[1], np.int32)
        val = np.empty(src.shape[1], np.int32)
        s_cl = np.empty(n, np.uint8)
        u_cl = np.empty(n, np.int32)
        v_cl = np.empty(n, np.int32)
        _channels_last(u[b], c_out, plane, u_cl)
        _channels_last(v[b], c_out, plane, v_cl)
        for t in range(t_steps):
            if t >= delay:
                c = 0
                c_end = hw_in
                for e in range(_events(src, words, bits, (t - delay) * batch + b, idx, val)):
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
                        w_r = w_c[run_wofs[r]:run_wofs[r] + m]
                        for j in range(m):
                            dst[j] += x_val * w_r[j]
            wr, sa = _lif_block(acc, shl, CONV_WRAP, u_cl, v_cl, bias_cl, fu, fv, th, s_cl)
            wraps += wr
            sats += sa
            if fast_order:
                _channels_first_bits(s_cl, c_out, plane, spikes[t, b], out_bits[t * batch + b])
            else:
                _channels_first(s_cl, c_out, plane, spikes[t, b])
                _pack_bits(spikes[t, b], 0, n, out_bits[t * batch + b])
        _channels_first(u_cl, c_out, plane, u[b])
        _channels_first(v_cl, c_out, plane, v[b])
        counts[b, 0] = wraps
        counts[b, 1] = sats
        _fetch_add(claim, 1, 1)


@njit(cache=True, inline="always")
def _check_row(x, r, bits):  # pragma: no cover - compiled
    """Row r of ``x``: (count of entries that are not finite integers, min(0, x), max(0, x)); packs x != 0 into
    bits[r]."""
    nb = 0
    a = 0.0
    b = 0.0
    for i in range(bits.shape[1]):
        word = np.uint64(0)
        for k in range(64 * i, min(x.shape[1], 64 * i + 64)):
            f = np.float64(x[r, k])
            nb += (f - np.floor(f)) != 0.0
            a = min(a, f)
            b = max(b, f)
            word |= np.uint64(f != 0.0) << np.uint64(k - 64 * i)
        bits[r, i] = word
    return nb, a, b


@njit(cache=True)
def _check_input(x):  # pragma: no cover - compiled
    bits = np.empty((x.shape[0], (x.shape[1] + 63) // 64), np.uint64)
    stats = np.zeros((x.shape[0] + 1, 3))
    for r in range(x.shape[0]):
        stats[r, 0], stats[r, 1], stats[r, 2] = _check_row(x, r, bits)
    return stats[:, 0].sum() == 0, stats[:, 1].min(), stats[:, 2].max(), bits


@njit(cache=True)
def _check_bytes(x):  # pragma: no cover - compiled
    """(min(0, x), max(0, x), rows packed by ``_pack_bits``: meaningful when every entry is 0 or 1) of a 1-byte
    (R, K) array."""
    bits = np.empty((x.shape[0], (x.shape[1] + 63) // 64), np.uint64)
    lo = 0
    hi = 0
    for r in range(x.shape[0]):
        row = x[r]
        a = row[0] if row.shape[0] else 0
        b = a
        for k in range(row.shape[0]):
            a = min(a, row[k])
            b = max(b, row[k])
        lo = min(lo, a)
        hi = max(hi, b)
        _pack_bits(row, 0, row.shape[0], bits[r])
    return lo, hi, bits


def check_input(x: np.ndarray) -> tuple[bool, float, float, np.ndarray]:
    """(every entry of ``x`` (R, K) is a finite integer, min(0, x), max(0, x), x != 0 packed as ``_pack_bits``
    does (valid when min >= 0 and max <= 1)), in one serial pass: a parallel launch costs more than it saves
    here on a loaded machine. 1-byte integers need no integrality check."""
    if x.dtype.itemsize == 1 and x.dtype.kind in "iub":
        low, high, bits = _check_bytes(x.view(np.uint8) if x.dtype == np.bool_ else x)
        return True, float(low), float(high), bits
    return _check_input(x)


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


def lif_fixed_step(a: np.ndarray, u: np.ndarray, v: np.ndarray, du: int, dv: int, vth: int, bias: np.ndarray,
                   counts: np.ndarray) -> np.ndarray:
    """One fixed-point step (numpy, int64 arrays updated in place); returns the spikes (uint8)."""
    x = decay_fixed(u, du + 1) + (a << 6)
    x = np.where((x >= INT32) | (x < -INT32), ((x + INT32) % (2 * INT32)) - INT32, x)
    w = np.where(x > U_LIMIT, x - 2 * U_LIMIT, x)
    w = np.where(w <= -U_LIMIT, x + 2 * U_LIMIT, w)
    counts[:, 0] += w != x
    u[:] = w
    y = decay_fixed(v, dv) + u + bias
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
