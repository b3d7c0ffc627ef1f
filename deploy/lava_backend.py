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
(``w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)``, Lava convolves). Lava has no batch axis. ``run_lava`` runs
one sample per graph copy; copies (and several networks) share one compiled run, joined by zero-weight Dense
connections into a one-neuron sink so that a single ``run`` call compiles them all (Lava forks one OS
process per ProcessModel: the process count grows with the samples). ``run_lava_packed`` instead runs B
samples as packed networks (``spikes.deploy.pack``: each population holds the copies side by side, each
projection is block-diagonal), so a graph has the processes of one copy: ``ceil(B / c)`` packs of ``c``
copies, ``c`` the most that keep a pack within ``pack_entries`` stored entries (memory), one Lava run each
(several packs joined in one run through the sink measured slower than separate runs). Spikes enter a packed
run's Sparse processes as graded messages of 0 or 1 (``run_lava(binary=False)``: ``W.dot(s)``, the same integers,
faster than Lava's column sum on millions of entries).
"""
from __future__ import annotations

import gc
import math
import multiprocessing as mp
import sys
import time

import numpy as np
import scipy.sparse as sp

from spikes.deploy.network import Network
from spikes.deploy.pack import copies_per_pack, pack, pack_inputs, projection_matrix, stored_entries, unpack
from spikes.deploy.populations import kind_of
from spikes.deploy.populations.base import TRACES
from spikes.deploy.quantize import QNetwork

# Lava (the optional extra spikes[lava], heavy; it also sets the 'fork' start method at import) is imported inside
# the functions that build or run a graph, after import_lava().


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
    ``spikes.deploy.pack.projection_matrix``, not probed: a probe needs an N_in x N_in identity). Only a (C, H, W)
    side is permuted: a flat shape's Lava order is torch's."""
    w = projection_matrix(proj) if proj.kind == "conv" else proj.weight
    pd = perm(dst_shape) if len(dst_shape) == 3 else None
    ps = perm(src_shape) if len(src_shape) == 3 else None
    w = w.tocsr() if sp.issparse(w) else np.asarray(w)
    if pd is not None:
        w = w[pd]
    if ps is not None:
        w = w[:, ps]
    return w.tocsr() if sp.issparse(w) else w


def import_lava() -> None:
    """Import Lava's runtime even if the start method is already 'fork' (numba's parallel pool sets it):
    lava calls ``multiprocessing.set_start_method('fork')`` unguarded at import."""
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


def _build_one(net, sample: dict[str, np.ndarray], fixed: bool, buffer: int, sink, matrices: dict | None = None,
               binary: bool = True):
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
        if extra > 0 and not graded and proj.kind != "conv" and stored_entries(proj) > math.prod(src_shape):
            port, extra = relay_port(proj.src, port, extra), 0    # cheaper than a DelaySparse of the matrix
        bits = 24 if graded or not binary else 0
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
             buffer: int = 64, timings: dict | None = None, binary: bool = True,
             matrices: dict | None = None) -> list[dict]:
    """Run every ``(network, one-sample inputs {name: (T, *shape)})`` job in ONE Lava run.

    Returns per job ``{population: {"spikes": (T, *shape), "u": shape, "v": shape}}`` (torch layout; graded
    kinds give ``"values"`` instead of ``"spikes"``; states are read only when ``states``). All jobs need the same
    number of steps. ``timings`` (a dict) receives ``first_chunk`` (compile + start + the first chunk, s), ``rest``
    (s) and ``rest_steps``. ``binary=False``: spikes enter synapse processes as graded messages (0 or 1), so
    Lava's Dense/Sparse compute ``W.dot(s)`` instead of summing the columns of the spiking inputs (the same
    integers; about 4x faster on a 20-million-entry Sparse). ``matrices``: a cache of the projections' matrices in
    Lava order (by projection id), shared by the jobs and, when given, with later calls.
    """
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
    matrices = {} if matrices is None else matrices
    builds = [_build_one(net, sample, fixed, buffer, sink, matrices, binary) for net, sample in jobs]
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


PACK_ENTRIES = 80_000_000   # stored entries (synapses, GT coupling) of one packed graph: ~0.6 GB as int32 csr
EXTRACTOR_BYTES = 32 << 20  # shared memory per Extractor buffer: fewer steps per chunk for big packed populations


def pack_plan(net: Network | QNetwork, batch: int, pack_entries: int = PACK_ENTRIES) -> list[int]:
    """The copies of each pack (one Lava run each) for ``batch`` samples: as few packs as keep each within
    ``pack_entries`` stored entries (``spikes.deploy.pack.copies_per_pack``), sizes differing by at most one (so
    at most two packed networks are built)."""
    if batch < 1:
        raise ValueError(f"run_lava_packed: needs at least one sample, got batch {batch}")
    n_packs = -(-batch // copies_per_pack(net, pack_entries, batch))
    return [batch // n_packs + (1 if i < batch % n_packs else 0) for i in range(n_packs)]


def run_lava_packed(net: Network | QNetwork, inputs: dict[str, np.ndarray], fixed: bool, states: bool = True,
                    pack_entries: int = PACK_ENTRIES, buffer: int = 64, timings: dict | None = None) -> dict:
    """Run the samples ``inputs`` ``{name: (T, B, *shape)}`` of ``net`` as packed networks, one Lava run per pack
    (:func:`pack_plan`; module docstring).

    Returns ``{population: {"spikes" (graded kinds: "values"): (T, B, *shape), states: (B, *shape)}}``, the same
    as ``run_lava`` with one job per sample. ``timings`` (a dict) receives ``plan`` and per pack ``runs``:
    ``{"copies", "seconds", "first_chunk", "rest", "rest_steps"}``. Final states are read with ``Var.get``, slow
    for big packed populations: pass ``states=False`` when they are not needed.
    """
    missing = [k for k in net.inputs if k not in inputs]
    if missing:
        raise ValueError(f"run_lava_packed: missing input(s) {missing}")
    x = {k: np.asarray(inputs[k]) for k in net.inputs}
    leads = {v.shape[:2] for v in x.values()}
    if len(leads) != 1 or any(v.ndim < 2 for v in x.values()):
        raise ValueError(f"run_lava_packed: every input must be (T, B, *shape) with the same T and B, got "
                         f"{ {k: v.shape for k, v in x.items()} }")
    batch = leads.pop()[1]
    plan = pack_plan(net, batch, pack_entries)
    largest = max(plan) * max(p.size for p in net.populations.values())
    buffer = max(1, min(buffer, EXTRACTOR_BYTES // (8 * largest)))
    packed: dict[int, Network | QNetwork] = {}        # packs of one size share their network and matrices
    matrices: dict = {}
    parts: list[dict] = []
    if timings is not None:
        timings.update(plan=plan, runs=[])
    start = 0
    for c in plan:
        t0 = time.perf_counter()
        if c not in packed:
            packed[c] = pack(net, c)
        sample = {k: v[:, 0] for k, v in pack_inputs({k: v[:, start:start + c] for k, v in x.items()}, net).items()}
        run_timings: dict = {}
        result = run_lava([(packed[c], sample)], fixed=fixed, states=states, buffer=buffer, timings=run_timings,
                          binary=False, matrices=matrices)[0]
        parts.append(unpack(result, net, c))
        start += c
        del result, sample
        gc.collect()            # Lava's processes hold their matrices in reference cycles: free them now
        if timings is not None:
            timings["runs"].append({"copies": c, "seconds": time.perf_counter() - t0, **run_timings})
    return {name: {key: np.concatenate([p[name][key] for p in parts], axis=1 if key in TRACES else 0)
                   for key in parts[0][name]} for name in net.populations}
