"""Packing: ``B`` samples in ONE network, so that a Lava run builds one process graph whatever ``B`` is.

``pack(net, B)`` (a lowered ``Network`` or a ``QNetwork``) returns the network of ``B`` independent copies of
``net`` side by side. Neuron ``i`` (torch flat order) of copy ``b`` of a population or input of ``N`` neurons
sits at flat index ``b N + i`` of a population of ``B N`` neurons::

    population:  (B N,) flat, or (B C, H, W) at the ends of a conv projection (copies stacked along the
                 channels: the same flat order); per-neuron parameters tiled, p[b N + i] = p[i]
                 (PopulationKind.pack; GT: coupling kron(I_B, q))
    projection:  W_packed = kron(I_B, W), a block-diagonal sparse matrix; a conv projection a grouped conv
                 over the stacked copies (B groups per group, kernel tiled: no matrix stored), or with
                 conv=False its sparse matrix of taps
    input:       x_packed[t, 0, b N + i] = x[t, b, i]      (one packed sample, pack_inputs)

Delays, weight exponents, recurrence, latencies and outputs are unchanged. Every population kind updates a
neuron from its own input and state only (GT: within its own block of ``q``), and a block-diagonal projection
gives the targets of copy ``b`` exactly ``W x_b``, so a packed run's outputs and states equal the ``B``
separate runs bit for bit in fixed point (integer sums). Floating point: the same per-neuron operations; only
the order of a projection's sum may differ from a per-copy Dense (Lava's Sparse and ``sim`` add a row's
entries in column order, a dense ``W s`` in BLAS order); grouped convs repeat the per-copy convolutions
exactly. One fixed-point caveat of ``conv=False``: Lava's ``Conv`` wraps its output to 24 bits and ``Sparse``
does not; LIF and e-prop neurons wrap their input themselves (the same integers after the wrap), so results
can differ only for other kinds, where a conv output overflows the 24 bits the quantiser provisions.

``unpack(result, net, B)`` turns a packed run's traces back into ``(T, B, *shape)`` and final states into
``(B, *shape)``. ``copies_per_pack(net, budget, limit)``: how many copies keep a packed network within ``budget``
stored entries (synapses, kept conv kernels, GT's coupling), the memory a Lava graph holds.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from spikes.graph import Conv2d
from spikes.graph.matrix import conv_block
from spikes.deploy.network import Network, Projection
from spikes.deploy.populations import kind_of
from spikes.deploy.populations.base import TRACES
from spikes.deploy.quantize import QNetwork, QProjection


def check_copies(copies) -> int:
    """``copies`` as an int >= 1 (``ValueError`` otherwise)."""
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 1:
        raise ValueError(f"pack: the number of copies must be an int >= 1, got {copies!r}")
    return int(copies)


def projection_matrix(proj) -> sp.csr_matrix:
    """A projection's matrix ``(N_out, N_in)``, torch flat order, as csr with sorted indices and no stored zeros.
    Conv: its taps (``spikes.graph.matrix.conv_block``), integer weights staying integers."""
    if proj.kind == "conv":
        c = proj.conv
        w = np.asarray(proj.weight)
        geo = Conv2d(w, c.in_shape, None, c.stride, c.padding, c.dilation, c.groups)
        mat = conv_block(geo, 0, w.shape[0]).tocsr()
        if np.issubdtype(w.dtype, np.integer):       # |w| <= 254: exact in float64 and back
            mat = mat.astype(w.dtype)
    else:
        mat = sp.csr_matrix(proj.weight, copy=True)
    mat.sum_duplicates()
    mat.eliminate_zeros()
    mat.sort_indices()
    return mat


def block_diagonal(mat: sp.spmatrix, copies: int, dtype=None) -> sp.csr_matrix:
    """``kron(I_copies, mat)`` as csr, built directly from ``mat``'s arrays (sorted indices; ``dtype``: of the
    entries, default ``mat``'s)."""
    mat = sp.csr_matrix(mat)
    rows, cols = mat.shape
    nnz = mat.nnz
    big = max(copies * cols, copies * nnz) >= 2**31
    index = np.int64 if big else np.int32
    offsets = np.arange(copies, dtype=np.int64)
    data = np.tile(mat.data.astype(dtype or mat.data.dtype, copy=False), copies)
    indices = (mat.indices.astype(index)[None, :] + (offsets * cols).astype(index)[:, None]).ravel()
    indptr = np.empty(copies * rows + 1, dtype=index)
    indptr[:-1] = (mat.indptr[:-1].astype(index)[None, :] + (offsets * nnz).astype(index)[:, None]).ravel()
    indptr[-1] = copies * nnz
    out = sp.csr_matrix((data, indices, indptr), shape=(copies * rows, copies * cols))
    out.has_sorted_indices = True
    return out


def _shapes(net: Network | QNetwork) -> dict[str, tuple[int, ...]]:
    """The per-sample shape of every input and population."""
    return {**{k: tuple(v) for k, v in net.inputs.items()}, **{k: tuple(p.shape) for k, p in net.populations.items()}}


def conv_kept(proj, shapes: dict[str, tuple[int, ...]], conv: bool) -> bool:
    """Whether ``pack`` keeps ``proj`` as a (grouped) convolution: ``conv`` asked and both ends (C, H, W)."""
    return conv and proj.kind == "conv" and len(shapes[proj.src]) == 3 and len(shapes[proj.dst]) == 3


def pack_projection(proj, copies: int, conv: bool = False):
    """``copies`` copies of ``proj`` as one block-diagonal projection (same delay, exponent and recurrence).

    ``conv`` (for a conv projection between (C, H, W) shapes): a grouped convolution over the copies stacked
    along the channels, ``groups * copies`` groups and the kernel tiled, ``w_packed[b Cout + o] = w[o]`` (no
    matrix is stored: what ``(copies C, H, W)`` packed shapes allow). Otherwise ``sparse`` ``kron(I, W)``;
    fixed-point entries are stored as int32 (8-bit weights; Lava keeps int32)."""
    if conv and proj.kind == "conv":
        c = proj.conv
        tile = (copies, 1, 1, 1)
        geo = Conv2d(np.tile(c.weight, tile), (copies * c.in_shape[0], *c.in_shape[1:]), None, c.stride, c.padding,
                     c.dilation, copies * c.groups)
        if isinstance(proj, QProjection):
            return QProjection(proj.src, proj.dst, "conv", np.tile(proj.weight, tile), proj.weight_exp, proj.delay,
                               proj.recurrent, geo)
        return Projection(proj.src, proj.dst, "conv", geo.weight, proj.delay, proj.recurrent, geo)
    mat = projection_matrix(proj)
    if isinstance(proj, QProjection):
        return QProjection(proj.src, proj.dst, "sparse", block_diagonal(mat, copies, np.int32), proj.weight_exp,
                           proj.delay, proj.recurrent, None)
    return Projection(proj.src, proj.dst, "sparse", block_diagonal(mat, copies, np.float64), proj.delay,
                      proj.recurrent, None)


def packed_shapes(net: Network | QNetwork, copies: int, conv: bool = True) -> dict[str, tuple[int, ...]]:
    """The packed shape of every input and population: ``(copies C, H, W)`` at the ends of a kept conv projection
    (:func:`conv_kept`), else flat ``(copies N,)``."""
    shapes = _shapes(net)
    stacked = {n for p in net.projections if conv_kept(p, shapes, conv) for n in (p.src, p.dst)}
    return {k: (copies * s[0], *s[1:]) if k in stacked else (copies * math.prod(s),) for k, s in shapes.items()}


def pack(net: Network | QNetwork, copies: int, conv: bool = True) -> Network | QNetwork:
    """The network of ``copies`` independent copies of ``net`` side by side (module docstring). ``conv``: keep conv
    projections as grouped convolutions over channel-stacked copies (Lava's ``Conv`` stores only the kernel;
    :func:`pack_projection`), else make them sparse matrices."""
    copies = check_copies(copies)
    shapes, unpacked = packed_shapes(net, copies, conv), _shapes(net)
    pops = {name: kind_of(pop).pack(pop, copies, shapes[name]) for name, pop in net.populations.items()}
    projs = [pack_projection(p, copies, conv_kept(p, unpacked, conv)) for p in net.projections]
    inputs = {name: shapes[name] for name in net.inputs}
    if isinstance(net, QNetwork):
        return QNetwork(inputs, pops, projs, dict(net.outputs), list(net.report), net.order())
    return Network(inputs, pops, projs, dict(net.outputs), net.order())


def pack_inputs(inputs: dict[str, np.ndarray], net: Network | QNetwork, conv: bool = True) -> dict[str, np.ndarray]:
    """Per-sample inputs ``{name: (T, B, *shape)}`` of ``net`` -> one packed sample ``(T, 1, *packed shape)`` of
    ``pack(net, B, conv)`` (the same memory order: sample-major)."""
    out = {}
    for name, shape in net.inputs.items():
        if name not in inputs:
            raise ValueError(f"pack_inputs: missing input {name!r}")
        x = np.asarray(inputs[name])
        if x.ndim != len(shape) + 2 or tuple(x.shape[2:]) != tuple(shape):
            raise ValueError(f"pack_inputs: input {name!r} must be (T, B, {', '.join(map(str, shape))}), got "
                             f"{x.shape}")
    shapes = packed_shapes(net, next(iter(inputs.values())).shape[1], conv) if inputs else {}
    for name in net.inputs:
        x = np.asarray(inputs[name])
        out[name] = x.reshape(x.shape[0], 1, *shapes[name])
    return out


def unpack(result: dict, net: Network | QNetwork, copies: int) -> dict:
    """A packed run's ``{population: {"spikes"/"values": (T, [1,] B N), state: ([1,] B N)}}`` (``run_lava`` has
    no sample axis, ``sim`` one of size 1) -> traces ``(T, B, *shape)`` and states ``(B, *shape)`` of ``net``'s
    populations; other keys (``sim``'s ``_overflow``) pass through."""
    copies = check_copies(copies)
    out = {}
    for name, entry in result.items():
        if name not in net.populations:
            out[name] = entry
            continue
        shape = net.populations[name].shape
        n = math.prod(shape)
        unpacked = {}
        for key, arr in entry.items():
            arr = np.asarray(arr)
            lead = (arr.shape[0],) if key in TRACES else ()
            if arr.size != math.prod(lead) * copies * n:
                raise ValueError(f"unpack: {name!r} {key!r} has shape {arr.shape}, expected {(*lead, copies * n)} "
                                 f"for {copies} copies of {n} neurons")
            unpacked[key] = arr.reshape(*lead, copies, *shape)
        out[name] = unpacked
    return out


def stored_entries(proj, conv: bool = True) -> int:
    """Entries one projection stores: a kept conv its kernel, a conv made sparse its taps, else its non-zeros."""
    if proj.kind == "sparse":
        return int(proj.weight.nnz)
    if proj.kind == "conv":
        return int(np.size(proj.weight)) if conv else int(projection_matrix(proj).nnz)
    return int(np.count_nonzero(proj.weight))


def packed_entries(net: Network | QNetwork, copies: int, conv: bool = True, per_copy: int | None = None) -> int:
    """Stored entries of ``pack(net, copies, conv)``: ``copies`` times those of one copy (``per_copy``, computed if
    None) plus each population's own coupling (GT: ``(copies N)**2``)."""
    if per_copy is None:
        shapes = _shapes(net)
        per_copy = sum(stored_entries(p, conv_kept(p, shapes, conv)) for p in net.projections)
    return copies * per_copy + sum(kind_of(p).coupling_entries(p, copies) for p in net.populations.values())


def copies_per_pack(net: Network | QNetwork, budget: int, limit: int, conv: bool = True) -> int:
    """The most copies (at most ``limit``, at least 1) whose packed network stores at most ``budget`` entries."""
    shapes = _shapes(net)
    per_copy = sum(stored_entries(p, conv_kept(p, shapes, conv)) for p in net.projections)
    lo, hi = 1, max(1, int(limit))
    while lo < hi:                       # packed_entries grows with the copies
        mid = (lo + hi + 1) // 2
        if packed_entries(net, mid, conv, per_copy) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
