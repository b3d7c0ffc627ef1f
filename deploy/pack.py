"""Packing: ``B`` samples in ONE network, so that a Lava run builds one process graph whatever ``B`` is.

``pack(net, B)`` (a lowered ``Network`` or a ``QNetwork``) returns the network of ``B`` independent copies of
``net`` side by side. Neuron ``i`` (torch flat order) of copy ``b`` of a population or input of ``N`` neurons
sits at flat index ``b N + i`` of a flat population of ``B N`` neurons::

    population:  shape (B N,), per-neuron parameters tiled, p[b N + i] = p[i]   (PopulationKind.pack;
                 GT: coupling kron(I_B, q))
    projection:  W_packed = kron(I_B, W), a block-diagonal sparse matrix   (a conv as its matrix first)
    input:       x_packed[t, 0, b N + i] = x[t, b, i]      (one packed sample)

Delays, weight exponents, recurrence, latencies and outputs are unchanged. Every population kind updates a
neuron from its own input and state only (GT: within its own block of ``q``), and the block-diagonal matrix
gives the targets of copy ``b`` exactly ``W x_b``, so a packed run's outputs and states equal the ``B``
separate runs bit for bit in fixed point (integer sums). Floating point: the same per-neuron operations;
only the order of a projection's sum may differ from a dense or conv run (Lava's Sparse adds row entries in
column order). One fixed-point caveat: Lava's ``Conv`` wraps its output to 24 bits and ``Sparse`` does not;
LIF and e-prop neurons wrap their input themselves (the same integers after the wrap), so results can differ
only for other kinds and only where a conv input overflows the 24 bits the quantiser provisions.

``unpack(result, net, B)`` turns a packed run's traces ``(T, B N)`` back into ``(T, B, *shape)`` and final
states ``(B N,)`` into ``(B, *shape)``. ``copies_per_pack(net, budget)``: how many copies keep a packed
network within ``budget`` stored entries (synapses plus GT's coupling), the memory a Lava graph holds.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from spikes.deploy.network import Network, Projection
from spikes.deploy.populations import kind_of
from spikes.deploy.quantize import QNetwork, QProjection

TRACES = ("spikes", "values")


def check_copies(copies) -> int:
    """``copies`` as an int >= 1 (``ValueError`` otherwise)."""
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 1:
        raise ValueError(f"pack: the number of copies must be an int >= 1, got {copies!r}")
    return int(copies)


def projection_matrix(proj) -> sp.csr_matrix:
    """A projection's matrix ``(N_out, N_in)``, torch flat order, as csr with sorted indices and no stored zeros.
    Conv: its taps (``spikes.deploy.graph.matrix.conv_block``), integer weights staying integers."""
    if proj.kind == "conv":
        from spikes.deploy.graph import Conv2d
        from spikes.deploy.graph.matrix import conv_block

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


def pack_projection(proj, copies: int):
    """``copies`` copies of ``proj`` as one block-diagonal ``sparse`` projection (same delay, exponent and
    recurrence). Fixed-point entries are stored as int32 (they are 8-bit weights; Lava keeps int32)."""
    mat = projection_matrix(proj)
    if isinstance(proj, QProjection):
        return QProjection(proj.src, proj.dst, "sparse", block_diagonal(mat, copies, np.int32), proj.weight_exp,
                           proj.delay, proj.recurrent, None)
    return Projection(proj.src, proj.dst, "sparse", block_diagonal(mat, copies, np.float64), proj.delay,
                      proj.recurrent, None)


def pack(net: Network | QNetwork, copies: int) -> Network | QNetwork:
    """The network of ``copies`` independent copies of ``net`` side by side (module docstring)."""
    copies = check_copies(copies)
    pops = {name: kind_of(pop).pack(pop, copies) for name, pop in net.populations.items()}
    projs = [pack_projection(p, copies) for p in net.projections]
    inputs = {name: (copies * math.prod(shape),) for name, shape in net.inputs.items()}
    if isinstance(net, QNetwork):
        return QNetwork(inputs, pops, projs, dict(net.outputs), list(net.report), net.order())
    return Network(inputs, pops, projs, dict(net.outputs), net.order())


def pack_inputs(inputs: dict[str, np.ndarray], net: Network | QNetwork) -> dict[str, np.ndarray]:
    """Per-sample inputs ``{name: (T, B, *shape)}`` of ``net`` -> the packed network's one sample ``(T, 1, B N)``."""
    out = {}
    for name, shape in net.inputs.items():
        if name not in inputs:
            raise ValueError(f"pack_inputs: missing input {name!r}")
        x = np.asarray(inputs[name])
        if x.ndim != len(shape) + 2 or tuple(x.shape[2:]) != tuple(shape):
            raise ValueError(f"pack_inputs: input {name!r} must be (T, B, {', '.join(map(str, shape))}), got "
                             f"{x.shape}")
        out[name] = x.reshape(x.shape[0], 1, -1)
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


def synapses(proj) -> int:
    """Stored entries of one projection (conv: its taps inside the input)."""
    if proj.kind == "sparse":
        return int(proj.weight.nnz)
    if proj.kind == "conv":
        return int(projection_matrix(proj).nnz)
    return int(np.count_nonzero(proj.weight))


def packed_entries(net: Network | QNetwork, copies: int, per_copy: int | None = None) -> int:
    """Stored entries of ``pack(net, copies)``: synapses (``per_copy`` of one copy, computed if None) times
    ``copies`` plus each population's own coupling."""
    if per_copy is None:
        per_copy = sum(synapses(p) for p in net.projections)
    return copies * per_copy + sum(kind_of(p).coupling_entries(p, copies) for p in net.populations.values())


def copies_per_pack(net: Network | QNetwork, budget: int, limit: int) -> int:
    """The most copies (at most ``limit``, at least 1) whose packed network stores at most ``budget`` entries."""
    per_copy = sum(synapses(p) for p in net.projections)
    lo, hi = 1, max(1, int(limit))
    while lo < hi:                       # packed_entries grows with the copies
        mid = (lo + hi + 1) // 2
        if packed_entries(net, mid, per_copy) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
