"""Build Lava process graphs from a lowered network and run them (``lava-float``, ``lava-fixed``).

Per population the process of its kind (``spikes.deploy.populations``: ``LIF`` for ``Neurons`` (fixed:
``QPopulation`` integers; float: ``du = 1 - alpha_syn``, ``dv = 1 - alpha``, ``vth = v_th``,
``bias_mant = bias``), custom processes for the others); per projection one ``Dense``, ``Sparse``,
``Conv`` or, for a delay above one step, ``DelaySparse`` (``delays = delay - 1``); several projections into
one population connect to the same ``a_in`` port, which sums them (additive skips). A delayed projection
from a spiking population whose matrix has more entries than the source has neurons (a U-Net skip: a
5-million-entry upsample + conv) is delayed on the source side instead: an identity ``DelaySparse`` into a
relay LIF that re-emits every spike (Lava's DelaySparse rebuilds its per-delay matrices every step, about
7 s per step for 5M entries), then the plain ``Sparse``; same arrival step, same integers. An input feeding
projections of several delays gets one ``RingBuffer`` per delay (its data shifted in time), because graded
values cannot pass a ``DelaySparse``. Spikes (graded kinds: values) leave through one ``Extractor`` per
population (whole vectors per step; ``Monitor`` is far slower), final states through ``Var.get``.

Layout: a (C, H, W) population is a Lava (X, Y, C) = (W, H, C) population (``x_lava = x.transpose(2, 1, 0)``);
Dense/Sparse matrices are permuted to that flat order and Conv kernels flipped and transposed
(``w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)``, Lava convolves). Lava has no batch axis: every sample is a
copy of the graph; copies (and several networks) share one compiled run, joined by zero-weight Dense
connections into a one-neuron sink so that a single ``run`` call compiles them all.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from spikes.deploy.network import Network
from spikes.deploy.populations import kind_of
from spikes.deploy.quantize import QNetwork


def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(reversed(shape)) if len(shape) == 3 else (math.prod(shape),)


def to_lava(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per-sample array (..., *shape) in torch layout -> (..., *lava_shape)."""
    lead = x.shape[: x.ndim - len(shape)]
    if len(shape) == 3:
        return np.moveaxis(x, (-3, -2, -1), (-1, -2, -3))
    return x.reshape(*lead, -1)


def from_lava(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lead = x.shape[: x.ndim - len(lava_shape(shape))]
    if len(shape) == 3:
        return np.moveaxis(x, (-1, -2, -3), (-3, -2, -1))
    return x.reshape(*lead, *shape)


def perm(shape: tuple[int, ...]) -> np.ndarray:
    """perm[i] = torch flat index of Lava flat index i."""
    idx = np.arange(math.prod(shape)).reshape(shape)
    return to_lava(idx, shape).reshape(-1)


def _matrix(proj, src_shape, dst_shape) -> np.ndarray | sp.csr_matrix:
    """The projection as a matrix in Lava flat order (a conv projection as its exact sparse tap matrix,
    ``spikes.deploy.pack.projection_matrix``, not probed: a probe needs an N_in x N_in identity)."""
    from spikes.deploy.pack import projection_matrix

    w = projection_matrix(proj) if proj.kind == "conv" else proj.weight
    if len(src_shape) != 3 and len(dst_shape) != 3:     # flat on both sides: Lava's order is torch's
        return w.tocsr() if sp.issparse(w) else np.asarray(w)
    pd, ps = perm(dst_shape), perm(src_shape)
    if sp.issparse(w):
        return w.tocsr()[pd][:, ps].tocsr()
    return np.asarray(w)[np.ix_(pd, ps)]


def _nnz(proj) -> int:
    w = proj.weight
    return int(w.nnz) if sp.issparse(w) else int(np.count_nonzero(w))


def import_lava() -> None:
    """Import Lava's runtime even if the start method is already 'fork' (numba's parallel pool sets it):
    lava calls ``multiprocessing.set_start_method('fork')`` unguarded at import."""
    import multiprocessing as mp
    import sys

    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    current = mp.get_start_method(allow_none=True)
    if current not in (None, "fork"):
        raise RuntimeError(f"Lava needs the 'fork' start method, but this program set {current!r}")
    original = mp.set_start_method
    mp.set_start_method = lambda method, force=False: None if method == "fork" else original(method, force)  # type: ignore[assignment]
    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    finally:
        mp.set_start_method = original  # type: ignore[assignment]


class _Built:
    def __init__(self):
        self.procs: dict = {}       # population -> its Lava process
        self.extractors: dict = {}


def _build_one(net, sample: dict[str, np.ndarray], fixed: bool, buffer: int, sink, matrices: dict | None = None):
    import_lava()
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.extractor import Extractor
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import DelaySparse, Sparse

    built = _Built()
    matrices = {} if matrices is None else matrices
    t_steps = next(iter(sample.values())).shape[0]
    for name in net.order():
        pop = net.populations[name]
        shape = lava_shape(pop.shape)
        kind = kind_of(pop)
        proc = kind.lava_process(pop, fixed, shape,
                                 lambda flat, s=pop.shape: to_lava(np.asarray(flat).reshape(s), s))
        built.procs[name] = proc
        ex = Extractor(shape=shape, buffer_size=buffer)
        kind.lava_output(proc).connect(ex.in_port)
        built.extractors[name] = ex
    sources: dict = {}

    def source_port(name: str, delay: int):
        """(out port, extra delay still to apply, graded?)"""
        if name in net.populations:
            kind = kind_of(net.populations[name])
            if kind.graded and delay > 1:
                raise NotImplementedError(f"lava: graded output of {name!r} needs a delay of {delay} steps; graded "
                                          "values cannot pass a DelaySparse")
            return kind.lava_output(built.procs[name]), delay - 1, kind.graded
        key = (name, delay)
        if key not in sources:
            shape = net.inputs[name]
            x = to_lava(np.asarray(sample[name], dtype=np.float64), shape)      # (T, *lava_shape)
            shifted = np.zeros_like(x)
            if delay - 1 < t_steps:
                shifted[delay - 1:] = x[: t_steps - (delay - 1)]
            sources[key] = RingBuffer(data=np.moveaxis(shifted, 0, -1).copy())
        return sources[key].s_out, 0, True

    relays: dict = {}

    def relay_port(name: str, port, extra: int):
        """The spikes of population ``name`` delayed by ``extra`` more steps: a delay line of ``extra - 1``
        steps (identity DelaySparse, or Sparse) into a relay LIF that fires on every input spike (weight 2,
        vth 0, no memory). The line then adds one synapse step, so the total matches a DelaySparse."""
        if (name, extra) not in relays:
            n = math.prod(port.shape)
            eye = sp.identity(n, format="csr", dtype=np.float64) * 2.0
            delays = sp.identity(n, format="csr", dtype=int) * (extra - 1)   # an int would fill n x n
            line = DelaySparse(weights=eye, delays=delays) if extra > 1 else Sparse(weights=eye)
            relay = (LIF(shape=(n,), du=4095, dv=4095, vth=0) if fixed else
                     LIF(shape=(n,), du=1.0, dv=1.0, vth=0.0))
            (port.flatten() if len(port.shape) > 1 else port).connect(line.s_in)
            line.a_out.connect(relay.a_in)
            relays[name, extra] = relay.s_out
        return relays[name, extra]

    for proj in net.projections:
        src_shape = net.inputs[proj.src] if proj.src in net.inputs else net.populations[proj.src].shape
        dst_shape = net.populations[proj.dst].shape
        port, extra, graded = source_port(proj.src, proj.delay)
        if extra > 0 and not graded and proj.kind != "conv" and _nnz(proj) > math.prod(src_shape):
            port, extra = relay_port(proj.src, port, extra), 0    # cheaper than a DelaySparse of the matrix
        bits = 24 if graded else 0
        exp = int(getattr(proj, "weight_exp", 0))
        kw = {"weight_exp": exp} if fixed else {}
        if proj.kind == "conv" and extra == 0 and len(src_shape) == 3:
            c = proj.conv
            w = np.asarray(proj.weight)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).copy()
            conn = Conv(weight=w if fixed else w.astype(np.float64), input_shape=lava_shape(src_shape),
                        padding=(c.padding[1], c.padding[0]), stride=(c.stride[1], c.stride[0]),
                        dilation=(c.dilation[1], c.dilation[0]), groups=c.groups, num_message_bits=bits)
            port.connect(conn.s_in)
            conn.a_out.connect(built.procs[proj.dst].a_in)
            continue
        if id(proj) not in matrices:     # copies of one network (one per sample) share their matrices
            matrices[id(proj)] = _matrix(proj, src_shape, dst_shape)
        mat = matrices[id(proj)]
        if extra > 0:
            conn = DelaySparse(weights=sp.csr_matrix(mat), delays=extra, num_message_bits=bits, **kw)
        elif sp.issparse(mat):
            conn = Sparse(weights=mat, num_message_bits=bits, **kw)
        else:
            conn = Dense(weights=mat, num_message_bits=bits, **kw)
        (port.flatten() if len(port.shape) > 1 else port).connect(conn.s_in)
        out = conn.a_out.reshape(lava_shape(dst_shape)) if len(dst_shape) == 3 else conn.a_out
        out.connect(built.procs[proj.dst].a_in)
    if sink is not None:
        first_name = net.order()[0]
        first = kind_of(net.populations[first_name]).lava_output(built.procs[first_name])
        n = math.prod(first.shape)
        tie = Dense(weights=np.zeros((1, n)))
        (first.flatten() if len(first.shape) > 1 else first).connect(tie.s_in)
        tie.a_out.connect(sink.a_in)
    return built


def _registries() -> tuple[list, list]:
    """Lava's global lists of every process and Var ever created (``ProcessServer``, ``VarServer``)."""
    from lava.magma.core.process.process import ProcessServer
    from lava.magma.core.process.variable import VarServer

    return ProcessServer().processes, VarServer().vars


def _forget(marks: tuple[int, int]) -> None:
    """Drop the processes and Vars registered since ``marks`` (the lengths of :func:`_registries`) from Lava's
    global lists, which would keep every stopped graph (and its matrices) alive for the rest of the program;
    ids stay unique (the servers' counters are untouched)."""
    for registry, first in zip(_registries(), marks):
        del registry[first:]


def run_lava(jobs: list[tuple[Network | QNetwork, dict[str, np.ndarray]]], fixed: bool, states: bool = True,
             buffer: int = 64, timings: dict | None = None) -> list[dict]:
    """Run every ``(network, one-sample inputs {name: (T, *shape)})`` job in ONE Lava run.

    Returns per job ``{population: {"spikes": (T, *shape), "u": shape, "v": shape}}`` (torch layout; graded
    kinds give ``"values"`` instead of ``"spikes"``; states are read only when ``states``). All jobs need the same number of steps. ``timings`` (a dict) receives
    ``first_chunk`` (compile + start + the first chunk, s), ``rest`` (s) and ``rest_steps``.
    """
    import time

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.lif.process import LIF

    if not jobs:
        return []
    steps = {next(iter(s.values())).shape[0] for _, s in jobs}
    if len(steps) != 1:
        raise ValueError(f"run_lava: all jobs need the same number of steps, got {sorted(steps)}")
    t_steps = steps.pop()
    buffer = max(1, min(buffer, t_steps))
    marks = tuple(len(r) for r in _registries())
    sink = LIF(shape=(1,), du=4095, dv=4095, vth=1) if len(jobs) > 1 else None
    matrices: dict = {}
    builds = [_build_one(net, sample, fixed, buffer, sink, matrices) for net, sample in jobs]
    anchor = sink if sink is not None else next(iter(builds[0].procs.values()))
    cfg = Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt",
                       exception_proc_model_map={Extractor: PyLoihiExtractorModel})
    spikes = [{n: [] for n in b.extractors} for b in builds]
    out: list[dict] = []
    try:
        done = 0
        start = time.perf_counter()
        while done < t_steps:
            chunk = min(buffer, t_steps - done)
            anchor.run(condition=RunSteps(num_steps=chunk), run_cfg=cfg)
            if timings is not None and done == 0:
                timings["first_chunk"] = time.perf_counter() - start
                start = time.perf_counter()
            for b, sp_ in zip(builds, spikes):
                for n, ex in b.extractors.items():
                    for _ in range(chunk):
                        sp_[n].append(np.array(ex.receive()))
            done += chunk
        if timings is not None:
            timings["rest"] = time.perf_counter() - start
            timings["rest_steps"] = t_steps - min(buffer, t_steps)
        for (net, _), b, sp_ in zip(jobs, builds, spikes):
            res = {}
            for n, proc in b.procs.items():
                shape = net.populations[n].shape
                kind = kind_of(net.populations[n])
                trace = from_lava(np.stack(sp_[n]), shape)
                if kind.graded:
                    r = {"values": trace.astype(np.int64) if fixed else trace.astype(np.float64)}
                else:
                    r = {"spikes": trace.astype(np.uint8)}
                if states:
                    r.update({k: from_lava(v, shape) for k, v in kind.lava_states(proc).items()})
                res[n] = r
            out.append(res)
    finally:
        anchor.stop()
        _forget(marks)
    return out
