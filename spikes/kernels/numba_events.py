"""Compiled helpers for event-driven layers: the indices of the non-zero entries of each row (CSR layout)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, error_model="numpy", parallel=True)
def row_nonzeros(x):  # pragma: no cover - compiled
    """x (R, K) -> (offsets (R + 1,), columns, values) of the non-zero entries, row by row (CSR)."""
    r, k = x.shape
    counts = np.zeros(r + 1, np.int64)
    for i in prange(r):
        c = 0
        for j in range(k):
            if x[i, j] != 0:
                c += 1
        counts[i + 1] = c
    offsets = np.cumsum(counts)
    cols = np.empty(offsets[r], np.int64)
    vals = np.empty(offsets[r], x.dtype)
    for i in prange(r):
        o = offsets[i]
        for j in range(k):
            if x[i, j] != 0:
                cols[o] = j
                vals[o] = x[i, j]
                o += 1
    return offsets, cols, vals


@njit(cache=True, error_model="numpy", parallel=True)
def gather_rows(offsets, cols, vals, wt, out):  # pragma: no cover - compiled
    """out[r] += sum_q vals[q] wt[cols[q]] over the entries q of row r (wt = W.T, (K, N))."""
    r, n = out.shape
    for i in prange(r):
        for q in range(offsets[i], offsets[i + 1]):
            c = cols[q]
            v = vals[q]
            for j in range(n):
                out[i, j] += v * wt[c, j]


@njit(cache=True, error_model="numpy", parallel=True)
def scatter_rows(offsets, cols, vals, g, parts):  # pragma: no cover - compiled
    """parts[thread][cols[q]] += vals[q] g[r] over all entries q of all rows r (dL/dW.T, summed by the caller)."""
    r, n = g.shape
    nchunk = parts.shape[0]
    step = (r + nchunk - 1) // nchunk
    for ch in prange(nchunk):
        acc = parts[ch]
        for i in range(ch * step, min(r, (ch + 1) * step)):
            for q in range(offsets[i], offsets[i + 1]):
                c = cols[q]
                v = vals[q]
                for j in range(n):
                    acc[c, j] += v * g[i, j]
