"""``sim``: a batched simulator with exactly Lava's semantics (fixed point: bit-exact with ``lava-fixed``).

Lava runs one sample at a time, one OS process per ProcessModel, barrier-synchronised every step. ``sim``
instead processes a whole batch and all steps layer by layer: populations in latency order; the input of a
population from each projection is computed for all steps at once (one matmul/conv over T x B, exact in
floating point because all values are integers far below 2**24 or 2**53), delayed by the projection's
delay; then one fused compiled loop (``kernels.lif_fixed_sequence``) runs the neuron update over time. Only
self-recurrent projections are evaluated step by step. Per-projection arithmetic follows Lava: Dense/Sparse
``(W s) << e`` (``>> -e``, flooring, for e < 0); Conv wraps its output to 24 bits. A population fed by a
single dense, sparse or conv projection instead runs in one event-driven compiled kernel (``_fused_lif``):
only the non-zero inputs of each step are accumulated, then the neurons are updated (same result).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from spikes.deploy import kernels
from spikes.deploy.network import Network
from spikes.deploy.populations import kind_of
from spikes.deploy.quantize import QNetwork, check_lava

F32_EXACT = 2**24


def _delay(x: np.ndarray, d: int) -> np.ndarray:
    """x[t - d] (zeros for t < d) along axis 0."""
    if d == 0:
        return x
    out = np.zeros_like(x)
    if d < x.shape[0]:
        out[d:] = x[:-d]
    return out


def _project(proj, x: np.ndarray, in_shape: tuple[int, ...], fixed: bool, x_max: float) -> np.ndarray:
    """The projection of ``x`` (R, *in_shape) for R = T*B rows: (R, N_out), int64 (fixed) or float64. All-zero
    rows (silent steps) project to zero: only the others are computed (:func:`_project_rows`)."""
    rows = x.shape[0]
    live = np.flatnonzero(x.reshape(rows, -1).any(axis=1))
    if live.size == rows:
        return _project_rows(proj, x, in_shape, fixed, x_max)
    n_out = math.prod(proj.conv.output_shape) if proj.kind == "conv" else proj.weight.shape[0]
    out = np.zeros((rows, n_out), dtype=np.int64 if fixed else np.float64)
    if live.size:
        out[live] = _project_rows(proj, x[live], in_shape, fixed, x_max)
    return out


def _project_rows(proj, x: np.ndarray, in_shape: tuple[int, ...], fixed: bool, x_max: float) -> np.ndarray:
    """:func:`_project` of every row of ``x``, silent or not."""
    rows = x.shape[0]
    w = proj.weight
    if proj.kind == "conv":
        c = proj.conv
        bound = float(np.abs(w).sum()) * x_max
        dt = torch.float32 if (fixed and bound < F32_EXACT) else torch.float64
        y = torch.nn.functional.conv2d(torch.as_tensor(x.reshape(rows, *in_shape), dtype=dt),
                                       torch.as_tensor(w, dtype=dt), None, c.stride, c.padding, c.dilation, c.groups)
        y = y.reshape(rows, -1).numpy()
        if not fixed:
            return y.astype(np.float64)
        y = np.rint(y).astype(np.int64)
        return ((y + 2**23) % 2**24) - 2**23   # Lava's Conv: signed 24-bit wrap
    x2 = x.reshape(rows, -1)
    if proj.kind == "sparse":
        if fixed:
            y = np.asarray((w @ x2.T.astype(np.int64)).T)
        else:
            y = np.asarray((w @ x2.T.astype(np.float64)).T)
    else:
        if fixed:
            bound = float(np.abs(w).sum(axis=1).max(initial=0)) * x_max
            if bound < F32_EXACT:
                y = np.rint(x2.astype(np.float32) @ w.T.astype(np.float32)).astype(np.int64)
            else:
                y = np.rint(x2.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
        else:
            y = x2.astype(np.float64) @ w.T
    if fixed:
        e = proj.weight_exp
        y = (y << e) if e > 0 else (y >> -e)
    return y


def _run_population(net, name: str, kind, trains: dict, maxima: dict, fixed: bool, t_steps: int,
                    batch: int) -> tuple[np.ndarray, dict]:
    """Outputs ``(T, B*N)`` and final state of a population of any kind: its inputs from every incoming
    projection for all steps at once, then the kind's sequence run (or, with a self-recurrent projection,
    step by step)."""
    pop = net.populations[name]
    m = batch * pop.size
    acc = np.zeros((t_steps, m), dtype=np.int64 if fixed else np.float64)
    recurrent = []
    for proj in net.incoming(name):
        if proj.src == name:
            recurrent.append(proj)
            continue
        if proj.src not in trains:
            raise NotImplementedError(f"sim: feedback projection {proj.src!r} -> {name!r} between different "
                                      "populations is not supported")
        src = trains[proj.src]
        in_shape = src.shape[2:]
        y = _project(proj, _delay(src, proj.delay).reshape(t_steps * batch, *in_shape), in_shape, fixed,
                     maxima.get(proj.src, 1.0))
        acc += y.reshape(t_steps, m)
    state = kind.init_state(pop, m, fixed)
    if not recurrent:
        return kind.run(pop, acc, state, fixed), state
    out = np.zeros((t_steps, m), dtype=kind.output_dtype(fixed))
    for t in range(t_steps):
        a = acc[t].copy()
        for proj in recurrent:
            if t >= proj.delay:
                prev = out[t - proj.delay].reshape(batch, *pop.shape)
                a += _project(proj, prev, pop.shape, fixed, float(np.abs(prev).max(initial=0))).reshape(m)
        out[t] = kind.step(pop, a, state, t, fixed)
    return out, state


def _halve(w: np.ndarray) -> tuple[np.ndarray, int]:
    """(w / 2 as int8, 1) when every weight is even and |w| <= 254 (``quantize``'s weights always are: Lava's
    8-bit weights), else (w as int16, 0): the kernels shift the accumulated sum left by the second value, and
    half-size weights halve the bytes each input event reads (the 10,000 x 100 readout's weights then fit L2)."""
    if w.size and np.abs(w).max() <= 254 and not (w & 1).any():
        return (w >> 1).astype(np.int8), 1
    return w.astype(np.int16, copy=False), 0


def _fused_lif(pop, proj, src: np.ndarray, x_max: float, packed: dict[str, np.ndarray]) -> tuple | None:
    """Run the LIF population ``pop`` fed only by ``proj`` (dense, sparse or conv from ``src`` (T, B, *shape),
    integer-valued, |src| <= ``x_max``) in one event-driven compiled kernel (``kernels.*_lif_events``).
    ``packed``: 0/1 trains packed into bits (T B, ceil(size / 64)) uint64 by name, read for the source when
    present (faster to scan) and written for ``pop``. Returns (spikes (T, B, N) uint8, u, v (B, N) int64,
    (u wraps, v saturations)), or None when the int32 accumulation could differ from the exact sum (a
    negative weight exponent with |W x| possibly >= 2**31) or weights do not fit int16 (Lava's have 8 bits)."""
    if proj.kind not in ("dense", "sparse", "conv"):
        return None
    t_steps, batch = src.shape[:2]
    n = pop.size
    e = int(getattr(proj, "weight_exp", 0))
    shl, shr = (e, 0) if e >= 0 else (0, -e)
    # the weights in the kernel's layout first: they decide whether the kernel can run at all
    if proj.kind == "dense":
        wt, w_max, w_l1 = kernels.transpose_int16(np.asarray(proj.weight))
        if w_max >= 2**15 or (shr and w_l1 * x_max >= 2**31):
            return None
        if n < 16:                   # a whole vector per input: 20 % faster for a 10-neuron readout
            wt = np.concatenate([wt, np.zeros((wt.shape[0], 16 - n), np.int16)], axis=1)
        # one block, or 2048 columns (a multiple of 64, for _pack_bits): 400 KB of weights for 100 inputs stay in
        # L2 while each step's spikes are written 2 KB at a time (512-column blocks cost 30 % more: their
        # scattered 512-byte writes miss the cache)
        block = wt.shape[1] if n <= 1024 and batch >= 2 else 2048
        wt, half = _halve(wt)
        weights = (wt, shl + half, shr)
        kernel, items, extra = kernels.dense_lif_events, -(-n // block) * batch, (block,)
    elif proj.kind == "sparse":
        w = proj.weight.tocsc()
        w_max = float(np.abs(w.data).max(initial=0))
        if w_max >= 2**15 or (shr and np.asarray(abs(w).sum(axis=1)).max(initial=0) * x_max >= 2**31):
            return None
        kernel, items, extra = kernels.sparse_lif_events, batch, ()
        data, half = _halve(w.data.astype(np.int64))
        weights = (w.indptr.astype(np.int64), w.indices.astype(np.int32), data, shl + half, shr)
    else:
        c = proj.conv
        w = np.asarray(proj.weight)
        if np.abs(w).max(initial=0) >= 2**15:
            return None
        c_out, cin_g, kh, kw = w.shape
        g = int(c.groups)
        # wc[c, ky, kx flipped, o] = w[group(c) Cout/g + o, c mod Cin/g, ky, kx]: see kernels.conv_runs
        wc = w[:, :, :, ::-1].reshape(g, c_out // g, cin_g, kh, kw).transpose(0, 2, 3, 4, 1)
        wc, half = _halve(np.ascontiguousarray(wc.reshape(g * cin_g, -1), np.int64))
        runs = kernels.conv_runs(*src.shape[3:], *c.output_shape[1:], kh, kw, np.array(c.stride, np.int64),
                                 np.array(c.padding, np.int64), np.array(c.dilation, np.int64), c_out, c_out // g)
        kernel, items, extra = kernels.conv_lif_events, batch, ()
        weights = (int(np.prod(src.shape[3:])), c_out, g, wc, kernels.CONV_WRAP + half, *runs)
    flat = np.ascontiguousarray(src).reshape(t_steps * batch, math.prod(src.shape[2:]))
    bits = packed.get(proj.src, np.zeros((t_steps * batch, 0), np.uint64))
    head = (flat, kernels.words_of(flat), bits, int(proj.delay))
    u0, v0 = kind_of(pop).start(pop, True)
    bias = np.asarray(pop.bias, np.int64)
    # the kernels' int32 neuron (kernels._neuron32) needs Lava's 24-bit states and a bias that keeps the
    # int32 sum of v exact; other start values (never from quantize) take the matmul path
    if (np.abs(u0).max(initial=0) > kernels.U_LIMIT or np.abs(v0).max(initial=0) >= kernels.U_LIMIT
            or np.abs(bias).max(initial=0) >= 2**30):
        return None
    spikes = np.empty((t_steps, batch, n), np.uint8)
    u = np.tile(np.asarray(u0, np.int32), (batch, 1))            # fresh, writable (B, N) arrays
    v = np.tile(np.asarray(v0, np.int32), (batch, 1))
    out_bits = np.empty((t_steps * batch, (n + 63) // 64), np.uint64)
    tail = (int(pop.du), int(pop.dv), int(pop.vth), bias.astype(np.int32), u, v, spikes, out_bits)
    counts = kernels.run_items(kernel, items, t_steps * batch * (n + flat.shape[1]), *head, *weights, *tail, *extra)
    packed[pop.name] = out_bits
    return spikes, u.astype(np.int64), v.astype(np.int64), counts


def simulate(net: Network | QNetwork, inputs: dict[str, np.ndarray], fused: bool = True) -> dict:
    """Run ``net`` (a ``QNetwork``: fixed point; a ``Network``: Lava's floating point) on ``inputs``.

    ``inputs``: name -> (T, B, *shape) arrays (integers for fixed point). Returns
    ``{population: {"spikes": (T, B, *shape) uint8, "u": (B, *shape), "v": (B, *shape)}}`` (graded kinds
    such as ``Integrator``: ``"values"`` (T, B, *shape) instead of ``"spikes"``, and their own states) plus
    ``"_overflow": {population: (u_wraps, v_saturations)}`` in fixed point. Fixed-point inputs may be of any
    integer or integer-valued float dtype (spikes as uint8/bool are cheapest). ``fused``: a population fed by
    one dense, sparse or conv projection runs in one compiled event-driven kernel (``_fused_lif``: only
    non-zero inputs are visited); ``fused=False`` forces the matmul path (same result).
    """
    fixed = isinstance(net, QNetwork)
    t_steps = batch = None
    trains: dict[str, np.ndarray] = {}
    maxima: dict[str, float] = {}
    packed: dict[str, np.ndarray] = {}      # 0/1 trains as bits, for the fused kernels
    for name, shape in net.inputs.items():
        if name not in inputs:
            raise ValueError(f"sim: missing input {name!r}")
        x = np.asarray(inputs[name])
        if x.ndim != len(shape) + 2 or tuple(x.shape[2:]) != tuple(shape):
            raise ValueError(f"sim: input {name!r} must be (T, B, {', '.join(map(str, shape))}), got {x.shape}")
        if fixed:   # kept in its own dtype (integer-valued floats too): every consumer converts what it reads
            x = x.view(np.uint8) if x.dtype == np.bool_ else x
            if x.dtype.kind not in "iuf" or x.dtype.itemsize < (4 if x.dtype.kind == "f" else 1):
                x = x.astype(np.float64)
            x = np.ascontiguousarray(x)        # once: the fused kernels read it as flat rows too
            flat = x.reshape(x.shape[0] * x.shape[1], math.prod(shape))
            integral, low, high, bits = kernels.check_input(flat)
            if not integral:
                raise ValueError(f"sim fixed point: input {name!r} must hold integers (spike counts)")
            top = max(-low, high)
            if low >= 0 and high <= 1:
                packed[name] = bits
        else:
            x = x.astype(np.float64)
            top = np.abs(x).max(initial=0)
        t_steps, batch = x.shape[:2]
        trains[name] = x
        maxima[name] = float(top)
    results: dict = {}
    overflow: dict = {}
    for name in net.order():
        pop = net.populations[name]
        if not fixed:
            check_lava(pop)
        kind = kind_of(pop)
        incoming = net.incoming(name)
        fast = None
        if (kind.name == "lif" and fixed and fused and len(incoming) == 1 and incoming[0].src != name
                and incoming[0].src in trains):
            fast = _fused_lif(pop, incoming[0], trains[incoming[0].src], maxima.get(incoming[0].src, 1.0), packed)
        if fast is not None:
            out, u, v, counts = fast
            states = {"u": u, "v": v}
            overflow[name] = counts
        else:
            out, state = _run_population(net, name, kind, trains, maxima, fixed, t_steps, batch)
            states = kind.final_states(state)
            if fixed:
                overflow[name] = kind.overflow(state)
        trains[name] = out.reshape(t_steps, batch, *pop.shape)
        maxima[name] = float(np.abs(out).max(initial=0)) if kind.graded else 1.0
        results[name] = {"values" if kind.graded else "spikes": trains[name],
                         **{k: np.asarray(a).reshape(batch, *pop.shape) for k, a in states.items()}}
    if fixed:
        results["_overflow"] = overflow
    return results
