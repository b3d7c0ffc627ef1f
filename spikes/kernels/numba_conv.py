"""Compiled (numba) event-driven 2-D convolution: work only for the non-zero inputs.

Cross-correlation as ``nn.Conv2d`` (groups 1, zero padding), with ``wt[ci, ky, kx, co] = W[co, ci, ky, kx]``::

    y[n, oy, ox, co] = b[co] + sum_{ci, ky, kx} W[co, ci, ky, kx] x[n, ci, oy sh - ph + ky dh, ox sw - pw + kx dw]

Forward scatters, for every non-zero input ``v = x[n, ci, iy, ix]``, ``v wt[ci, ky, kx, :]`` into the output
pixel that tap (ky, kx) reaches; the weight gradient gathers for the same events
``dL/dwt[ci, ky, kx, :] += v dL/dy[n, oy, ox, :]``. Outputs and output gradients are channels-last
``(N, Ho, Wo, Co)``, so the innermost loop runs over output channels contiguously (it vectorises); the
input is scanned in its own memory order, ``(N, Ci, H, W)`` or ``(N, H, W, Ci)`` (``channels_last``).
Images run in parallel; the weight gradient is summed per thread chunk (fixed image ranges) in float64 and
the chunks are added by the caller in a fixed order, so results do not depend on scheduling.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, error_model="numpy", inline="always")
def _tap(i, k, stride, pad, dil, n_out):  # pragma: no cover - compiled
    """Output index that input index i reaches through kernel tap k, or -1."""
    t = i + pad - k * dil
    if t < 0:
        return -1
    if stride != 1:  # (integer division costs tens of cycles: not for the common stride 1)
        if t % stride != 0:
            return -1
        t //= stride
    return t if t < n_out else -1


@njit(cache=True, error_model="numpy")
def _image_events(x, n, channels_last, ev_c, ev_y, ev_x, ev_v):  # pragma: no cover - compiled
    """The non-zero entries of image n, scanned in memory order, into (ev_c, ev_y, ev_x, ev_v); returns their count."""
    ne = 0
    xi = x[n]
    if channels_last:
        for iy in range(xi.shape[0]):
            for ix in range(xi.shape[1]):
                for ci in range(xi.shape[2]):
                    v = xi[iy, ix, ci]
                    if v != 0:
                        ev_c[ne], ev_y[ne], ev_x[ne], ev_v[ne] = ci, iy, ix, v
                        ne += 1
    else:
        for ci in range(xi.shape[0]):
            for iy in range(xi.shape[1]):
                for ix in range(xi.shape[2]):
                    v = xi[ci, iy, ix]
                    if v != 0:
                        ev_c[ne], ev_y[ne], ev_x[ne], ev_v[ne] = ci, iy, ix, v
                        ne += 1
    return ne


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def conv_forward(x, channels_last, wt, bias, sh, sw, ph, pw, dh, dw, out):  # pragma: no cover - compiled
    """out (N, Ho, Wo, Co) = bias + the scattered taps of the non-zero entries of x (see the module docstring)."""
    n_img, ho, wo, co = out.shape
    _, kh, kw, _ = wt.shape
    size = x[0].size
    for n in prange(n_img):
        ev_c, ev_y, ev_x = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64)
        ev_v = np.empty(size, x.dtype)
        ne = _image_events(x, n, channels_last, ev_c, ev_y, ev_x, ev_v)
        for oy in range(ho):
            for ox in range(wo):
                for c in range(co):
                    out[n, oy, ox, c] = bias[c]
        for e in range(ne):
            ci, iy, ix, v = ev_c[e], ev_y[e], ev_x[e], ev_v[e]
            for ky in range(kh):
                oy = _tap(iy, ky, sh, ph, dh, ho)
                if oy < 0:
                    continue
                for kx in range(kw):
                    ox = _tap(ix, kx, sw, pw, dw, wo)
                    if ox < 0:
                        continue
                    for c in range(co):
                        out[n, oy, ox, c] += v * wt[ci, ky, kx, c]


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def conv_weight_grad(x, channels_last, g, sh, sw, ph, pw, dh, dw, need_bias,
                     gw_parts, gb_parts):  # pragma: no cover - compiled
    """gw_parts[p] (Ci, KH, KW, Co) and gb_parts[p] (Co,) += this chunk's dL/dwt and dL/db; g (N, Ho, Wo, Co).

    Chunk p takes images [p*step, (p+1)*step); each image is summed in g's dtype, then added in float64."""
    n_img, ho, wo, co = g.shape
    n_parts, ci_n, kh, kw, _ = gw_parts.shape
    step = (n_img + n_parts - 1) // n_parts
    size = x[0].size
    for p in prange(n_parts):
        acc = np.empty((ci_n, kh, kw, co), g.dtype)
        bsum = np.empty(co, g.dtype)
        ev_c, ev_y, ev_x = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64)
        ev_v = np.empty(size, x.dtype)
        for n in range(p * step, min(n_img, (p + 1) * step)):
            acc[:] = 0
            ne = _image_events(x, n, channels_last, ev_c, ev_y, ev_x, ev_v)
            for e in range(ne):
                ci, iy, ix, v = ev_c[e], ev_y[e], ev_x[e], ev_v[e]
                for ky in range(kh):
                    oy = _tap(iy, ky, sh, ph, dh, ho)
                    if oy < 0:
                        continue
                    for kx in range(kw):
                        ox = _tap(ix, kx, sw, pw, dw, wo)
                        if ox < 0:
                            continue
                        for c in range(co):
                            acc[ci, ky, kx, c] += v * g[n, oy, ox, c]
            for ci in range(ci_n):
                for ky in range(kh):
                    for kx in range(kw):
                        for c in range(co):
                            gw_parts[p, ci, ky, kx, c] += acc[ci, ky, kx, c]
            if need_bias:
                bsum[:] = 0
                for oy in range(ho):
                    for ox in range(wo):
                        for c in range(co):
                            bsum[c] += g[n, oy, ox, c]
                for c in range(co):
                    gb_parts[p, c] += bsum[c]
