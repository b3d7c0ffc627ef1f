"""Exact sparse matrices of linear nodes and of linear chains, built from the node parameters (no probing).

The lowering (``spikes.deploy.network``) needs the matrix ``M`` (N_out, N_in) of every chain of linear nodes
from a source to a population. Probing the chain on basis vectors costs one forward pass per source
neuron, ``O(N_in N_out)``: about 5e11 multiply-adds for one decoder level of a small StereoSpike (nearest
upsample then a 5x5 conv on 64x96 maps). Here each node's matrix ``A_n`` comes from its parameters and a
chain is their product, summed at joins::

    M(src) = I,      M(n) = A_n  sum_{p -> n} M(p),      chain(src -> pop) = sum_{p -> pop} M(p)

Rules (rows and columns flat in C order):

- ``Conv2d`` (cross-correlation with stride s, padding p, dilation d, groups): row ``(co, oy, ox)``, column
  ``(g Cin_g + ci, oy s - p + ky d, ox s - p + kx d)`` (inside the input) with weight ``w[co, ci, ky, kx]``,
  built one block of output channels at a time; ``SumPool2d``/``AvgPool2d`` are grouped convs of a
  constant kernel (1 or ``1 / (kH kW)``);
- ``Upsample`` (nearest): a 0/1 selection, read off by applying the node itself to the source indices (so it
  is torch's own index rule); a selection composes by gathering rows (``A @ S`` remaps columns);
- ``Scale``: ``gain I``; ``Flatten``: ``I``; ``Affine``: its weight.

Entries are sums of the same weights the probe adds (in another order: equal to within float64 rounding;
exactly equal when the sums are exact, e.g. dyadic weights). Nodes without a rule make
:func:`chain_matrix` return None, and the lowering probes that chain instead.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from spikes.graph.affine import Affine
from spikes.graph.conv import Conv2d
from spikes.graph.graph import Graph
from spikes.graph.node import LinearNode
from spikes.graph.pool import AvgPool2d, SumPool2d
from spikes.graph.reshape import Flatten, Scale
from spikes.graph.upsample import Upsample

BLOCK_ENTRIES = 4_000_000   # conv taps materialised at once


def _as_conv(node: SumPool2d) -> Conv2d:
    c = node.in_shape[0]
    kh, kw = node.kernel
    weight = np.full((c, 1, kh, kw), 1.0 if type(node) is SumPool2d else 1.0 / (kh * kw))
    return Conv2d(weight, node.in_shape, None, node.stride, node.padding, (1, 1), c)


def _conv_taps(node: Conv2d) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The taps inside the input, for one (output, input) channel pair: ``(output pixel, input pixel, tap)``
    flat indices (``oy Wo + ox``, ``iy W + ix``, ``ky kW + kx``)."""
    _, _, kh, kw = node.weight.shape
    _, h, w = node.in_shape
    _, ho, wo = node.output_shape
    (sy, sx), (py, px), (dy, dx) = node.stride, node.padding, node.dilation
    ky, kx, oy, ox = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(ho), np.arange(wo), indexing="ij")
    iy, ix = oy * sy - py + ky * dy, ox * sx - px + kx * dx
    valid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    return (oy * wo + ox)[valid], (iy * w + ix)[valid], (ky * kw + kx)[valid]


def conv_block(node: Conv2d, c0: int, c1: int, taps=None) -> sp.coo_matrix:
    """Rows of output channels ``c0:c1`` (``(c1 - c0) Ho Wo`` rows, all ``Cin H W`` columns) of a conv."""
    cout, cin_g, kh, kw = node.weight.shape
    _, h, w = node.in_shape
    n_pix = math.prod(node.output_shape[1:])
    out_pix, in_pix, tap = taps if taps is not None else _conv_taps(node)
    co = np.arange(c0, c1).reshape(-1, 1, 1)
    cin = (co // (cout // node.groups)) * cin_g + np.arange(cin_g).reshape(1, -1, 1)
    shape = (c1 - c0, cin_g, out_pix.size)
    rows = np.broadcast_to((co - c0) * n_pix + out_pix, shape).ravel()
    cols = (cin * (h * w) + in_pix).ravel()
    vals = node.weight[c0:c1].reshape(c1 - c0, cin_g, kh * kw)[:, :, tap].ravel()
    return sp.coo_matrix((vals, (rows, cols)), shape=((c1 - c0) * n_pix, math.prod(node.in_shape)))


def _selection(x: sp.csr_matrix) -> np.ndarray | None:
    """The column of each row if ``x`` is a 0/1 selection (exactly one 1 per row), else None."""
    if x.nnz != x.shape[0] or not np.array_equal(np.diff(x.indptr), np.ones(x.shape[0], np.int64)) \
            or not np.all(x.data == 1.0):
        return None
    return x.indices


def _conv_times(node: Conv2d, x: sp.csr_matrix) -> sp.csr_matrix:
    """``A_conv @ x``, one block of output channels at a time (a selection ``x`` just remaps columns)."""
    cout = node.weight.shape[0]
    per_channel = max(1, int(np.prod(node.weight.shape[1:])) * math.prod(node.output_shape[1:]))
    step = max(1, BLOCK_ENTRIES // per_channel)
    sel = _selection(x)
    taps = _conv_taps(node)
    blocks = []
    for c0 in range(0, cout, step):
        blk = conv_block(node, c0, min(cout, c0 + step), taps)
        if sel is not None:
            blk = sp.coo_matrix((blk.data, (blk.row, sel[blk.col])), shape=(blk.shape[0], x.shape[1])).tocsr()
        else:
            blk = blk.tocsr() @ x
        blocks.append(blk)
    return sp.vstack(blocks, format="csr")


def _upsample_index(node: Upsample) -> np.ndarray:
    """The source index of each output element (torch's own nearest rule, applied to the indices)."""
    n = math.prod(node.in_shape)
    idx = torch.arange(n, dtype=torch.float64).reshape(1, *node.in_shape)
    return node.apply(idx).reshape(-1).numpy().astype(np.int64)


def apply_matrix(node: LinearNode, x: sp.csr_matrix) -> sp.csr_matrix | None:
    """``A_node @ x`` (sparse), or None if ``node`` has no rule here."""
    kind = type(node)
    if kind is Conv2d:
        return _conv_times(node, x)
    if kind in (SumPool2d, AvgPool2d):
        return _conv_times(_as_conv(node), x)
    if kind is Upsample:
        return x[_upsample_index(node)]
    if kind is Scale:
        return (x * node.gain).tocsr()
    if kind is Flatten:
        return x
    if kind is Affine:
        return sp.csr_matrix(sp.csr_matrix(node.weight) @ x)
    return None


def chain_matrix(graph: Graph, src: str, pop: str, linear: set[str]) -> sp.csr_matrix | None:
    """The matrix (N_pop, N_src) of the linear nodes ``linear`` from ``src`` into ``pop`` (other sources
    zero), or None if a node on the way has no rule. Constant terms (biases) are not included."""
    n_src = math.prod(graph.nodes[src].output_shape)
    mats: dict[str, sp.csr_matrix] = {src: sp.identity(n_src, format="csr", dtype=np.float64)}

    def total(name: str) -> sp.csr_matrix | None:
        parts = [mats[p] for p in graph.predecessors(name) if p in mats]
        if not parts:
            return None
        out = parts[0]
        for part in parts[1:]:
            out = out + part
        return out.tocsr()

    for name in graph.linear_order():
        if name not in linear:
            continue
        x = total(name)
        if x is None:
            continue
        y = apply_matrix(graph.nodes[name], x)
        if y is None:
            return None
        mats[name] = y
    out = total(pop)
    if out is None:
        return sp.csr_matrix((math.prod(graph.nodes[pop].input_shape), n_src))
    return out
