"""Compiled (numba) non-overlapping average pooling of channels-last input, forward and backward.

With window = stride = (kh, kw), no padding, floor mode (``nn.AvgPool2d(k)``)::

    y[n, oy, ox, c] = sum_{dy < kh, dx < kw} x[n, oy kh + dy, ox kw + dx, c] / (kh kw)
    dL/dx[n, iy, ix, c] = dL/dy[n, iy // kh, ix // kw, c] / (kh kw)   (0 in rows/columns the windows miss)

The innermost loop runs over channels (contiguous, vectorised); images run in parallel. Backward writes every
input-gradient entry once, so it needs no zero-filled buffer. The output is contiguous NCHW, the layout a
following flatten wants (each image's result goes through a small channels-last tile that is then
transposed: direct strided writes measured 4x slower); its gradient is read in either layout
(``avg_pool_backward`` channels-last, ``avg_pool_backward_nchw`` contiguous).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, fastmath=True, error_model="numpy")
def _spread(g, kh, kw, div, gx):  # pragma: no cover - compiled
    """One image: g (Ho, Wo, C) -> gx (H, W, C), gx[iy, ix] = g[iy // kh, ix // kw] / div, 0 outside the windows."""
    h, w, c_n = gx.shape
    ho, wo = g.shape[0], g.shape[1]
    for iy in range(h):
        oy = iy // kh
        for ix in range(w):
            ox = ix // kw
            if oy < ho and ox < wo:
                for c in range(c_n):
                    gx[iy, ix, c] = g[oy, ox, c] / div
            else:
                for c in range(c_n):
                    gx[iy, ix, c] = 0


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def avg_pool_backward(g, kh, kw, div, gx):  # pragma: no cover - compiled
    """g (N, Ho, Wo, C) -> gx (N, H, W, C), every entry written."""
    for n in prange(gx.shape[0]):
        _spread(g[n], kh, kw, div, gx[n])


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def avg_pool_forward_nchw(x, kh, kw, div, out):  # pragma: no cover - compiled
    """x (N, H, W, C) -> out (N, C, H // kh, W // kw), contiguous."""
    n_img, c_n, ho, wo = out.shape
    for n in prange(n_img):
        tile = np.zeros((ho, wo, c_n), dtype=out.dtype)
        for oy in range(ho):
            for ox in range(wo):
                for dy in range(kh):
                    for dx in range(kw):
                        for c in range(c_n):
                            tile[oy, ox, c] += x[n, oy * kh + dy, ox * kw + dx, c]
        for c in range(c_n):
            for oy in range(ho):
                for ox in range(wo):
                    out[n, c, oy, ox] = tile[oy, ox, c] / div


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def avg_pool_backward_nchw(g, kh, kw, div, gx):  # pragma: no cover - compiled
    """g (N, C, Ho, Wo), contiguous -> gx (N, H, W, C), every entry written."""
    c_n, ho, wo = g.shape[1], g.shape[2], g.shape[3]
    for n in prange(gx.shape[0]):
        tile = np.empty((ho, wo, c_n), dtype=gx.dtype)
        for c in range(c_n):
            for oy in range(ho):
                for ox in range(wo):
                    tile[oy, ox, c] = g[n, c, oy, ox]
        _spread(tile, kh, kw, div, gx[n])
