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


def out_size(size: int, k: int, stride: int, pad: int, dil: int) -> int:
    """Output length of one spatial axis (``nn.Conv2d``'s formula)."""
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


@njit(cache=True, error_model="numpy", inline="always")
def _tap(i, k, stride, pad, dil, n_out):  # pragma: no cover - compiled
    """Output index that input index i reaches through kernel tap k, or -1."""
    t = i + pad - k * dil
    if t < 0 or t % stride != 0:
        return -1
    o = t // stride
    return o if o < n_out else -1


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _scatter(o, wt, ci, iy, ix, v, sh, sw, ph, pw, dh, dw):  # pragma: no cover - compiled
    """o[oy, ox, :] += v wt[ci, ky, kx, :] for every tap of input (ci, iy, ix)."""
    _, kh, kw, co = wt.shape
    ho, wo = o.shape[0], o.shape[1]
    for ky in range(kh):
        oy = _tap(iy, ky, sh, ph, dh, ho)
        if oy < 0:
            continue
        for kx in range(kw):
            ox = _tap(ix, kx, sw, pw, dw, wo)
            if ox < 0:
                continue
            for c in range(co):
                o[oy, ox, c] += v * wt[ci, ky, kx, c]


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _gather(acc, g, ci, iy, ix, v, sh, sw, ph, pw, dh, dw):  # pragma: no cover - compiled
    """acc[ci, ky, kx, :] += v g[oy, ox, :] for every tap of input (ci, iy, ix)."""
    _, kh, kw, co = acc.shape
    ho, wo = g.shape[0], g.shape[1]
    for ky in range(kh):
        oy = _tap(iy, ky, sh, ph, dh, ho)
        if oy < 0:
            continue
        for kx in range(kw):
            ox = _tap(ix, kx, sw, pw, dw, wo)
            if ox < 0:
                continue
            for c in range(co):
                acc[ci, ky, kx, c] += v * g[oy, ox, c]


@njit(cache=True, error_model="numpy", parallel=True, fastmath=True)
def conv_forward(x, channels_last, wt, bias, sh, sw, ph, pw, dh, dw, out):  # pragma: no cover - compiled
    """out (N, Ho, Wo, Co) = bias + the scattered taps of the non-zero entries of x (see the module docstring)."""
    n_img = out.shape[0]
    co = out.shape[3]
    for n in prange(n_img):
        o = out[n]
        for oy in range(o.shape[0]):
            for ox in range(o.shape[1]):
                for c in range(co):
                    o[oy, ox, c] = bias[c]
        xi = x[n]
        if channels_last:
            for iy in range(xi.shape[0]):
                for ix in range(xi.shape[1]):
                    for ci in range(xi.shape[2]):
                        v = xi[iy, ix, ci]
                        if v != 0:
                            _scatter(o, wt, ci, iy, ix, v, sh, sw, ph, pw, dh, dw)
        else:
            for ci in range(xi.shape[0]):
                for iy in range(xi.shape[1]):
                    for ix in range(xi.shape[2]):
                        v = xi[ci, iy, ix]
                        if v != 0:
                            _scatter(o, wt, ci, iy, ix, v, sh, sw, ph, pw, dh, dw)


@njit(cache=True, error_model="numpy", parallel=True, fastmath=True)
def conv_weight_grad(x, channels_last, g, sh, sw, ph, pw, dh, dw, need_bias,
                     gw_parts, gb_parts):  # pragma: no cover - compiled
    """gw_parts[p] (Ci, KH, KW, Co) and gb_parts[p] (Co,) += this chunk's dL/dwt and dL/db; g (N, Ho, Wo, Co).

    Chunk p takes images [p*step, (p+1)*step); each image is summed in g's dtype, then added in float64."""
    n_img = g.shape[0]
    n_parts = gw_parts.shape[0]
    step = (n_img + n_parts - 1) // n_parts
    for p in prange(n_parts):
        acc = np.empty(gw_parts.shape[1:], g.dtype)
        bsum = np.empty(g.shape[3], g.dtype)
        for n in range(p * step, min(n_img, (p + 1) * step)):
            acc[...] = 0
            gi = g[n]
            xi = x[n]
            if channels_last:
                for iy in range(xi.shape[0]):
                    for ix in range(xi.shape[1]):
                        for ci in range(xi.shape[2]):
                            v = xi[iy, ix, ci]
                            if v != 0:
                                _gather(acc, gi, ci, iy, ix, v, sh, sw, ph, pw, dh, dw)
            else:
                for ci in range(xi.shape[0]):
                    for iy in range(xi.shape[1]):
                        for ix in range(xi.shape[2]):
                            v = xi[ci, iy, ix]
                            if v != 0:
                                _gather(acc, gi, ci, iy, ix, v, sh, sw, ph, pw, dh, dw)
            gw = gw_parts[p]
            for ci in range(acc.shape[0]):
                for ky in range(acc.shape[1]):
                    for kx in range(acc.shape[2]):
                        for c in range(acc.shape[3]):
                            gw[ci, ky, kx, c] += acc[ci, ky, kx, c]
            if need_bias:
                bsum[:] = 0
                for oy in range(gi.shape[0]):
                    for ox in range(gi.shape[1]):
                        for c in range(gi.shape[2]):
                            bsum[c] += gi[oy, ox, c]
                for c in range(bsum.shape[0]):
                    gb_parts[p, c] += bsum[c]
