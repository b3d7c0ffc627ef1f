"""``sim``: a batched simulator with exactly Lava's semantics (fixed point: bit-exact with ``lava-fixed``).

Lava runs one sample at a time, one OS process per ProcessModel, barrier-synchronised every step. ``sim``
instead processes a whole batch and all steps layer by layer: populations in latency order; the input of a
population from each projection is computed for all steps at once (one matmul/conv over T x B, exact in
floating point because all values are integers far below 2**24 or 2**53), delayed by the projection's
delay; then one fused compiled loop (``kernels.lif_fixed_sequence``) runs the neuron update over time. Only
self-recurrent projections are evaluated step by step. Per-projection arithmetic follows Lava: Dense/Sparse
``(W s) << e`` (``>> -e``, flooring, for e < 0); Conv wraps its output to 24 bits.
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
    """The projection of ``x`` (R, *in_shape) for R = T*B rows: (R, N_out), int64 (fixed) or float64."""
    rows = x.shape[0]
    w = proj.weight
    live = np.flatnonzero(x.reshape(rows, -1).any(axis=1))
    if live.size < rows:   # all-zero rows (silent steps) project to zero: compute only the others
        n_out = math.prod(proj.conv.output_shape) if proj.kind == "conv" else w.shape[0]
        out = np.zeros((rows, n_out), dtype=np.int64 if fixed else np.float64)
        if live.size:
            out[live] = _project(proj, x[live], in_shape, fixed, x_max)
        return out
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


def simulate(net: Network | QNetwork, inputs: dict[str, np.ndarray], fused: bool = True) -> dict:
    """Run ``net`` (a ``QNetwork``: fixed point; a ``Network``: Lava's floating point) on ``inputs``.

    ``inputs``: name -> (T, B, *shape) arrays (integers for fixed point). Returns
    ``{population: {"spikes": (T, B, *shape) uint8, "u": (B, *shape), "v": (B, *shape)}}`` (graded kinds
    such as ``Integrator``: ``"values"`` (T, B, *shape) instead of ``"spikes"``, and their own states) plus
    ``"_overflow": {population: (u_wraps, v_saturations)}`` in fixed point. ``fused``: a population fed by
    one dense or conv projection runs in one compiled event-driven loop (``kernels.dense_lif_fixed``,
    ``conv_lif_fixed``: only non-zero inputs are visited); ``fused=False`` forces the matmul path (same result).
    """
    fixed = isinstance(net, QNetwork)
    t_steps = batch = None
    trains: dict[str, np.ndarray] = {}
    maxima: dict[str, float] = {}
    for name, shape in net.inputs.items():
        if name not in inputs:
            raise ValueError(f"sim: missing input {name!r}")
        x = np.asarray(inputs[name])
        if x.ndim != len(shape) + 2 or tuple(x.shape[2:]) != tuple(shape):
            raise ValueError(f"sim: input {name!r} must be (T, B, {', '.join(map(str, shape))}), got {x.shape}")
        if fixed:
            if not np.all(np.equal(np.mod(x, 1), 0)):
                raise ValueError(f"sim fixed point: input {name!r} must hold integers (spike counts)")
            x = x.astype(np.int64)
        else:
            x = x.astype(np.float64)
        t_steps, batch = x.shape[:2]
        trains[name] = x.reshape(t_steps * batch, *shape) if False else x
        maxima[name] = float(np.abs(x).max(initial=0))
    results: dict = {}
    overflow: dict = {}
    for name in net.order():
        pop = net.populations[name]
        if not fixed:
            check_lava(pop)
        kind = kind_of(pop)
        if kind.name != "lif":
            out, state = _run_population(net, name, kind, trains, maxima, fixed, t_steps, batch)
            key = "values" if kind.graded else "spikes"
            trains[name] = out.reshape(t_steps, batch, *pop.shape)
            maxima[name] = float(np.abs(out).max(initial=0)) if kind.graded else 1.0
            results[name] = {key: trains[name], **{k: v.reshape(batch, *pop.shape)
                                                   for k, v in kind.final_states(state).items()}}
            if fixed:
                overflow[name] = kind.overflow(state)
            continue
        n = pop.size
        m = batch * n
        acc = None
        recurrent = [proj for proj in net.incoming(name) if proj.src == name]
        fast = (fixed and fused and len(net.incoming(name)) == 1 and not recurrent
                and net.incoming(name)[0].kind in ("dense", "conv"))
        for proj in ([] if fast else net.incoming(name)):
            if acc is None:
                acc = np.zeros((t_steps, m), dtype=np.int64 if fixed else np.float64)
            if proj.src == name:
                continue
            if proj.src not in trains:
                raise NotImplementedError(f"sim: feedback projection {proj.src!r} -> {name!r} between different "
                                          "populations is not supported")
            src = trains[proj.src]
            in_shape = src.shape[2:]
            x = _delay(src, proj.delay)
            y = _project(proj, x.reshape(t_steps * batch, *in_shape), in_shape, fixed, maxima.get(proj.src, 1.0))
            acc += y.reshape(t_steps, m)
        if fixed:
            du, dv, vth = pop.du, pop.dv, pop.vth
            bias = np.tile(pop.bias, batch)
            u = np.zeros(m, np.int64)
            v = np.zeros(m, np.int64)
            counts = np.zeros((m, 2), np.int64)
        else:
            p = pop.params
            du, dv, vth = 1.0 - p.alpha_syn, 1.0 - p.alpha_value, float(p.v_th)
            bias = np.tile(pop.bias.astype(np.float64), batch)
            u = np.zeros(m)
            v = np.zeros(m)
        spikes = np.zeros((t_steps, m), np.uint8)
        incoming = net.incoming(name)
        if fixed and fused and len(incoming) == 1 and not recurrent and incoming[0].kind in ("dense", "conv"):
            proj = incoming[0]
            src = trains[proj.src]
            if not src.flags.c_contiguous:
                src = np.ascontiguousarray(src)
            u2, v2 = u.reshape(batch, n), v.reshape(batch, n)
            c2 = np.zeros((batch, 2), np.int64)
            sp3 = spikes.reshape(t_steps, batch, n)
            if proj.kind == "dense":
                kernels.dense_lif_fixed(src.reshape(t_steps, batch, -1), np.ascontiguousarray(proj.weight.T, np.int32),
                                        int(proj.weight_exp), int(proj.delay), du, dv, vth, pop.bias, u2, v2, sp3, c2)
            else:
                c = proj.conv
                kernels.conv_lif_fixed(src, np.asarray(proj.weight, np.int64), np.array(c.stride, np.int64),
                                       np.array(c.padding, np.int64), np.array(c.dilation, np.int64), int(c.groups),
                                       np.array(c.output_shape[1:], np.int64), int(proj.delay), du, dv, vth,
                                       pop.bias, u2, v2, sp3, c2)
            counts[0] = c2.sum(axis=0)
        elif not recurrent:
            if acc is None:
                acc = np.zeros((t_steps, m), dtype=np.int64 if fixed else np.float64)
            if fixed:
                kernels.lif_fixed_sequence(acc, du, dv, vth, bias, u, v, spikes, counts)
            else:
                kernels.lif_float_sequence(acc, du, dv, vth, bias, u, v, spikes)
        else:
            for t in range(t_steps):
                a = acc[t].copy() if acc is not None else np.zeros(m, np.int64 if fixed else np.float64)
                for proj in recurrent:
                    if t >= proj.delay:
                        prev = spikes[t - proj.delay].reshape(batch, *pop.shape)
                        a += _project(proj, prev, pop.shape, fixed, 1.0).reshape(m)
                if fixed:
                    spikes[t] = kernels.lif_fixed_step(a, u, v, du, dv, vth, bias, counts)
                else:
                    spikes[t] = kernels.lif_float_step(a, u, v, du, dv, vth, bias)
        trains[name] = spikes.reshape(t_steps, batch, *pop.shape)
        maxima[name] = 1.0
        results[name] = {"spikes": trains[name], "u": u.reshape(batch, *pop.shape), "v": v.reshape(batch, *pop.shape)}
        if fixed:
            overflow[name] = (int(counts[:, 0].sum()), int(counts[:, 1].sum()))
    if fixed:
        results["_overflow"] = overflow
    return results
