"""NIR interchange: ``to_nir(graph)``, ``from_nir(nir_graph, dialect=...)``, ``write_nir``/``read_nir``.

NIR neurons are continuous-time; each library discretises them its own way, so import takes a ``dialect``:

=========  ====================================================================================================
dialect    discretisation (forward Euler with step ``dt``; alpha = 1 - dt/tau)
=========  ====================================================================================================
``nir``    ours (``spikes.neurons.dynamics``): LIF ``v = alpha v + (r dt/tau) x + (dt/tau) v_leak``;
           CubaLIF ``i = alpha_syn i + (w_in dt/tau_syn) x``, then ``v = alpha v + (r dt/tau_mem) i``
           (v uses the NEW current); IF ``v = v + r dt x``. Default ``dt = 1e-3``.
``snntorch`` snntorch's ``export_to_nir`` writes ``tau = dt/(1 - beta)``, ``r = tau/dt``,
           ``w_in = tau_syn/dt`` with ``dt = 1e-4`` hard-coded: the ``nir`` formulas with ``dt = 1e-4``
           give back ``beta``, ``alpha`` and unit gains. Its ``Synaptic`` also uses the new current. The
           reset mechanism is not exported (``v_reset = 0``): snntorch's ``reset_mechanism="zero"``
           (``mem = beta mem (1 - s_prev) + x``) equals our zero reset exactly for ``Leaky``; ``Synaptic``'s zero
           reset sets ``mem = 0`` for the whole step after a spike (its input dropped), which is our zero reset
           with ``refractory_steps = 1`` (exact in floating point; Lava's LIF has no refractory period, so
           sim/Lava refuse it: use ``Leaky``). ``RLeaky`` (a LIF in a loop with one Affine/Linear) resets the
           same way as ``Synaptic`` (one refractory step), and its recurrent ``nn.Linear``'s bias, a constant input
           from the first step on, moves to the feed-forward synapse's bias (our recurrent edge carries the
           previous step). Reading a snntorch graph without ``reset=`` warns (:class:`NIRResetWarning`) that
           ``zero`` is assumed; pass ``reset="subtract"`` for its default, which subtracts ``v_th`` at the next
           step (ours subtracts at once: close, not exact). snntorch writes ``nn.AvgPool2d(2)``'s sizes as
           1-element arrays (read as pairs); its exporter traces one sample without a batch axis, so a conv net
           flattens with ``nn.Flatten(-3)`` (``nn.Flatten()`` flattens the wrong axes there).
``norse``  norse (``dt = 1e-3``; its ``to_nir`` writes ``tau = dt / tau_inv``, i.e. dt times the true
           time constant, which we undo): ``LIFBoxCell`` -> LIF ``v += dt/tau (v_leak - v + r x)`` (= ``nir``);
           ``LIFCell`` -> CubaLIF, norse 1.1's ``lif_feed_forward_step``: ``i += x`` (gain ``w_in = 1``, not
           ``w_in dt/tau_syn``), ``v += dt/tau_mem (v_leak - v + r i)`` with that NEW current, then
           ``i *= 1 - dt/tau_syn``: our CuBa with ``alpha_syn = 1 - dt/tau_syn`` and input gain
           ``w_in r dt/tau_mem`` (older norse updated v with the previous current; a graph needing that sets
           ``Neurons.input_delay = 1``); ``IAFCell`` -> IF ``v += r x``.
=========  ====================================================================================================

Export for another library's importer: ``to_nir(graph, dialect="snntorch" | "norse")`` (see
:mod:`spikes.deploy.nir_peers`: each importer's ``dt``, gains folded into synapses, refusals naming the layer).

The input gain of a population (``r dt/tau`` etc.) becomes a ``Scale`` node in front of it (folded into the
synapses when lowered); ``v_leak`` becomes the bias. Parameters must be uniform over a population (Lava has
one du/dv/vth per population); ``v_reset`` must be 0. Export writes LIF/IF/CubaLIF with ``r = tau/dt``
(unit input gain) and keeps our reset kind and input delay in each node's ``metadata``. ``nir`` (heavy) is imported
only by the functions that build or read NIR graphs.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from spikes.graph import (Affine, AvgPool2d, Conv2d, Flatten, Graph, Input, Neurons, Output, Scale, SumPool2d,
                          Upsample)
from spikes.graph.theta import Theta
from spikes.deploy.nir_peers import PEER_DT, graph_for_peer
from spikes.io import atomic_write
from spikes.neurons.dynamics import NeuronParameters

DIALECTS = {"nir": 1e-3, "snntorch": 1e-4, "norse": 1e-3}


class NIRResetWarning(UserWarning):
    """A NIR graph does not say how its neurons reset, and a reset was assumed."""


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _uniform(value, what: str, name: str) -> float:
    arr = _np(value).ravel()
    if arr.size == 0:
        raise ValueError(f"NIR node {name!r}: {what} is empty")
    if not np.allclose(arr, arr[0], rtol=1e-6, atol=0):
        raise ValueError(f"NIR node {name!r}: {what} differs between neurons; Lava (and spikes) need one value per "
                         "population")
    return float(arr[0])


# ---------------------------------------------------------------------------------------------- export
def to_nir(graph: Graph, dt: float | None = None, dialect: str = "nir"):
    """The NIR graph of ``graph`` (see the module docstring); ``Upsample`` has no NIR node and is refused.

    ``dialect``: ``nir`` (ours, ``dt`` default 1e-3), or the library whose importer will read it: ``snntorch``
    (``import_from_nir``) or ``norse`` (``from_nir``): the graph is rewritten for that importer
    (:mod:`spikes.deploy.nir_peers`: its ``dt``, gains folded into the synapses, average pools as sum pools for
    norse, Flatten dims as it applies them), and a layer it cannot run is refused, named, with the reason."""
    import nir

    if dialect not in DIALECTS:
        raise ValueError(f"unknown NIR dialect {dialect!r}; choose one of {sorted(DIALECTS)}")
    if dialect != "nir":
        if dt is not None and abs(dt - PEER_DT[dialect]) > 1e-15:
            raise ValueError(f"{dialect}'s NIR importer uses dt = {PEER_DT[dialect]}, not {dt}")
        graph = graph_for_peer(graph, dialect)
    dt = DIALECTS[dialect] if dt is None else float(dt)
    nodes, edges = {}, list(graph.edges)
    for name, node in graph.nodes.items():
        if isinstance(node, Input):
            nodes[name] = nir.Input(input_type={"input": np.array(node.shape)})
        elif isinstance(node, Output):
            nodes[name] = nir.Output(output_type={"output": np.array(node.shape)})
        elif isinstance(node, Affine):
            nodes[name] = (nir.Affine(weight=node.weight, bias=node.bias) if node.bias is not None
                           else nir.Linear(weight=node.weight))
        elif isinstance(node, Conv2d):
            nodes[name] = nir.Conv2d(input_shape=tuple(node.in_shape[1:]), weight=node.weight, stride=node.stride,
                                     padding=node.padding, dilation=node.dilation, groups=node.groups,
                                     bias=node.bias if node.bias is not None else np.zeros(node.weight.shape[0]))
        elif isinstance(node, SumPool2d):
            cls = nir.AvgPool2d if isinstance(node, AvgPool2d) else nir.SumPool2d
            nodes[name] = cls(kernel_size=np.array(node.kernel), stride=np.array(node.stride),
                              padding=np.array(node.padding))
        elif isinstance(node, Flatten):
            nodes[name] = nir.Flatten(input_type={"input": np.array(node.in_shape)}, start_dim=0, end_dim=-1)
        elif isinstance(node, Scale):
            nodes[name] = nir.Scale(scale=np.full(node.shape, node.gain))
        elif isinstance(node, Neurons):
            nodes[name] = _neuron_to_nir(name, node, dt, unit_r=dialect == "norse")
        elif isinstance(node, Theta):
            raise ValueError(f"layer {name!r} is a theta (QIF phase) population: NIR has no theta neuron (no "
                             "quadratic V(V - 1) + I0 dynamics, no phase threshold), so it cannot be exported to NIR; "
                             "run it in Lava with spikes.deploy.processes.theta.run_theta_lava")
        else:
            raise ValueError(f"node {name!r} ({type(node).__name__}) has no NIR equivalent")
    if dialect == "snntorch":
        _nest_recurrent(graph, nodes, edges)
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _nest_recurrent(graph: Graph, nodes: dict, edges: list[tuple[str, str]]) -> None:
    """Each population in a loop with one synapse of its own (``pop -> w -> pop``) becomes a sub-graph
    ``input -> lif <-> w_rec, lif -> output`` under the population's name: the shape snntorch's ``export_to_nir``
    gives RLeaky/RSynaptic. Left flat, snntorch's ``import_from_nir`` re-nests the loop itself with the layer's
    input wired into ``w_rec`` (it computes ``lif(W_rec (s[t-1] + x[t]))``, not ``lif(x[t] + W_rec s[t-1])``)."""
    import nir

    for pop in graph.of_type(Neurons):
        loops = [w for w in graph.successors(pop) if pop in graph.successors(w) and isinstance(graph.nodes[w], Affine)
                 and graph.predecessors(w) == [pop] and graph.successors(w) == [pop]]
        if len(loops) != 1:
            continue
        (w,) = loops
        shape = np.array(graph.nodes[pop].shape)
        nodes[pop] = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": shape}), "lif": nodes[pop],
                                         "w_rec": nodes.pop(w), "output": nir.Output(output_type={"output": shape})},
                                  edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
        edges[:] = [e for e in edges if e not in ((pop, w), (w, pop))]


def _neuron_to_nir(name: str, node: Neurons, dt: float, unit_r: bool = False):
    """The NIR node of a population, one value per neuron (per-neuron ``alpha``, ``v_th``, ``bias`` kept).
    ``unit_r``: write LIF with ``r = 1`` (norse reads no ``r``; the gain is in the synapses)."""
    import nir

    p = node.params
    if p.adaptive or p.refractory_steps:
        raise ValueError(f"layer {name!r}: ALIF/refractory neurons have no NIR equivalent")
    full = lambda v: np.full(node.shape, float(v))  # noqa: E731
    meta = {"reset": p.reset, "input_delay": node.input_delay}
    alpha, v_th, bias = node.values("alpha"), node.values("v_th"), node.values("bias")
    if np.all(alpha >= 1.0) and not p.has_current:
        if np.any(bias):
            raise ValueError(f"layer {name!r}: an IF population with a bias has no NIR equivalent (NIR IF has no leak)")
        return nir.IF(r=full(1.0 / dt), v_threshold=v_th, v_reset=full(0.0), metadata=meta)
    if np.any(alpha >= 1.0):
        raise ValueError(f"layer {name!r}: " + ("CubaLIF needs alpha < 1 in NIR (tau_mem finite)" if p.has_current
                                                 else "some neurons have alpha = 1 (no leak) and others not: NIR "
                                                      "has no population mixing IF and LIF"))
    tau = dt / (1.0 - alpha)
    v_leak = bias / (1.0 - alpha)
    if not p.has_current:
        return nir.LIF(tau=tau, r=np.ones(node.shape) if unit_r else tau / dt, v_leak=v_leak, v_threshold=v_th,
                       v_reset=full(0.0), metadata=meta)
    tau_syn = dt / (1.0 - p.alpha_syn)
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=tau, r=tau / dt, v_leak=v_leak,
                       v_threshold=v_th, v_reset=full(0.0), w_in=full(tau_syn / dt), metadata=meta)


def write_nir(graph: Graph, path: str | os.PathLike, dt: float | None = None, dialect: str = "nir") -> None:
    """Write ``graph`` as a NIR (HDF5) file for ``dialect``'s reader (:func:`to_nir`), atomically."""
    import nir

    path = Path(path)
    nir_graph = to_nir(graph, dt, dialect)
    atomic_write(path, lambda tmp: nir.write(str(tmp), nir_graph))


def read_nir(path: str | os.PathLike, dialect: str = "nir", dt: float | None = None, reset: str | None = None) -> Graph:
    import nir

    try:
        g = nir.read(str(path))
    except Exception as exc:
        raise ValueError(f"{path}: cannot read a NIR graph: {exc}") from exc
    return from_nir(g, dialect, dt, reset)


# ---------------------------------------------------------------------------------------------- import
def _inline(graph) -> tuple[dict, list[tuple[str, str]]]:
    """Flatten nested NIR graphs (snntorch's RLeaky/RSynaptic): ``outer.inner`` names."""
    import nir

    nodes, edges = {}, []
    entry, exit_ = {}, {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _inline(node)
            ins = [n for n, v in sub_nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in sub_nodes.items() if isinstance(v, nir.Output)]
            entry[name] = [b for a, b in sub_edges if a in ins]
            exit_[name] = [a for a, b in sub_edges if b in outs]
            for n, v in sub_nodes.items():
                if n not in ins and n not in outs:
                    nodes[f"{name}.{n}"] = v
            for a, b in sub_edges:
                if a not in ins and b not in outs:
                    edges.append((f"{name}.{a}", f"{name}.{b}"))
            entry[name] = [f"{name}.{b}" for b in entry[name]]
            exit_[name] = [f"{name}.{a}" for a in exit_[name]]
        else:
            nodes[name] = node
    for a, b in graph.edges:
        for src in exit_.get(a, [a]):
            for dst in entry.get(b, [b]):
                edges.append((src, dst))
    return nodes, edges


def from_nir(nir_graph, dialect: str = "nir", dt: float | None = None, reset: str | None = None) -> Graph:
    """Our :class:`Graph` of a NIR graph written by ``dialect`` (``nir``, ``snntorch``, ``norse``).

    ``reset``: the reset of neurons whose node does not record one (NIR has no reset field; our export keeps it
    in the node's metadata): ``zero`` (default) or ``subtract``. snntorch's export records none, so reading it
    without ``reset`` warns that ``zero`` is assumed (exact for snntorch's ``reset_mechanism="zero"``)."""
    import nir

    if dialect not in DIALECTS:
        raise ValueError(f"unknown NIR dialect {dialect!r}; choose one of {sorted(DIALECTS)}")
    dt = DIALECTS[dialect] if dt is None else float(dt)
    nodes_in, edges = _inline(nir_graph)
    neurons = [n for n, v in nodes_in.items() if isinstance(v, (nir.LIF, nir.IF, nir.CubaLIF))]
    unrecorded = [n for n in neurons if "reset" not in (getattr(nodes_in[n], "metadata", None) or {})]
    if reset is None:
        if dialect == "snntorch" and unrecorded:
            warnings.warn(f"NIR graph from snntorch: layers {unrecorded} record no reset mechanism (snntorch's "
                          "export_to_nir writes none); read as reset='zero', exact for snntorch's "
                          "reset_mechanism='zero'. Its default 'subtract' (applied one step late) is approximated "
                          "by from_nir(..., reset='subtract')", NIRResetWarning, stacklevel=2)
        reset = "zero"
    # snntorch's RLeaky is a LIF in a loop with one synapse; its zero reset zeroes the whole next step (as Synaptic)
    looped = {n for n in neurons for a, b in edges if a == n and (b, n) in edges
              and isinstance(nodes_in[b], (nir.Affine, nir.Linear))}
    _move_recurrent_biases(nodes_in, edges, looped)
    preds = {n: [a for a, b in edges if b == n] for n in nodes_in}
    succs = {n: [b for a, b in edges if a == n] for n in nodes_in}
    out_nodes: dict = {}
    out_edges: list[tuple[str, str]] = []
    row_gains: dict[str, np.ndarray] = {}       # populations whose input gain differs between neurons
    shapes: dict[str, tuple[int, ...]] = {}
    pending = list(nodes_in)
    guard = 0
    while pending:
        guard += 1
        if guard > 10 * len(nodes_in) + 10:
            raise ValueError(f"NIR graph: cannot infer the shapes of {pending} (loop without a neuron, or missing input)")
        name = pending.pop(0)
        node = nodes_in[name]
        known = [shapes[a] for a in preds[name] if a in shapes]
        if not isinstance(node, nir.Input) and not known:
            pending.append(name)
            continue
        in_shape = known[0] if known else None
        made = _import_node(name, node, in_shape, succs[name], nodes_in, dialect, dt, reset, name in looped,
                            row_gains)
        for n, v in made:
            out_nodes[n] = v
        shapes[name] = tuple(made[-1][1].output_shape)
        if len(made) == 2:   # Scale in front of a population: incoming edges go to the Scale
            out_edges.append((made[0][0], name))
    for a, b in edges:
        dst = f"{b}.gain" if f"{b}.gain" in out_nodes else b
        out_edges.append((a, dst))
    for name, gain in row_gains.items():
        for src in [a for a, b in out_edges if b == name]:
            syn = out_nodes[src]
            if not isinstance(syn, Affine) or [b for a, b in out_edges if a == src] != [name]:
                raise ValueError(f"NIR node {name!r}: its input gain differs between neurons (per-neuron time "
                                 f"constants); it goes into the rows of the Affine/Linear synapses feeding the layer "
                                 f"alone, and {src!r} ({type(syn).__name__}) is not one")
            g = gain.reshape(-1)
            out_nodes[src] = Affine(syn.weight * g[:, None], None if syn.bias is None else syn.bias * g)
    return Graph(out_nodes, out_edges)


def _move_recurrent_biases(nodes: dict, edges: list[tuple[str, str]], looped: set[str]) -> None:
    """A bias on a recurrent synapse (snntorch's RLeaky/RSynaptic: ``nn.Linear`` with a bias) is a constant input
    from the first step on, while our recurrent edge carries the previous step (nothing at step 0): it moves to the
    bias of the one feed-forward synapse into the same neurons (exact at every step)."""
    import nir

    for n in sorted(looped):
        for w in [b for a, b in edges if a == n and (b, n) in edges]:
            rec = nodes[w]
            if not isinstance(rec, nir.Affine) or not np.any(_np(rec.bias)):
                continue
            feeds = [a for a, b in edges if b == n and a != w]
            f = nodes[feeds[0]] if len(feeds) == 1 else None
            if not isinstance(f, (nir.Affine, nir.Linear)) or [b for a, b in edges if a == feeds[0]] != [n]:
                raise ValueError(f"NIR node {n!r}: its recurrent synapse {w!r} has a bias, a constant input from the "
                                 "first step on; it can only be moved to a single Affine/Linear feeding the layer "
                                 f"alone, and the layer's other inputs are {feeds}")
            bias = _np(rec.bias) + (_np(f.bias) if isinstance(f, nir.Affine) else 0.0)
            nodes[feeds[0]] = nir.Affine(weight=_np(f.weight), bias=bias)
            nodes[w] = nir.Linear(weight=_np(rec.weight))


def _import_node(name, node, in_shape, succs, nodes_in, dialect: str, dt: float, reset: str, looped: bool = False,
                 row_gains: dict | None = None):
    import nir

    if isinstance(node, nir.Input):
        shape = tuple(int(s) for s in np.ravel(_np(list(node.input_type.values())[0])))
        want = _expected_dims(succs, nodes_in)
        while want is not None and len(shape) > want and shape[0] == 1:
            shape = shape[1:]
        return [(name, Input(shape))]
    if isinstance(node, nir.Output):
        return [(name, Output(in_shape))]
    if isinstance(node, (nir.Affine, nir.Linear)):
        return [(name, Affine(_np(node.weight), _np(node.bias) if isinstance(node, nir.Affine) else None))]
    if isinstance(node, nir.Conv2d):
        if len(in_shape) != 3:
            raise ValueError(f"NIR node {name!r}: Conv2d needs a (C, H, W) input, got {in_shape}")
        pad = node.padding
        if isinstance(pad, str):
            raise ValueError(f"NIR node {name!r}: string padding {pad!r} is not supported")
        bias = _np(node.bias) if node.bias is not None else None
        return [(name, Conv2d(_np(node.weight), in_shape, bias if bias is not None and np.any(bias) else None,
                              _pair(node.stride), _pair(pad), _pair(node.dilation), int(node.groups)))]
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        cls = AvgPool2d if isinstance(node, nir.AvgPool2d) else SumPool2d
        return [(name, cls(in_shape, _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)))]
    if isinstance(node, nir.Flatten):
        return [(name, Flatten(in_shape))]
    if isinstance(node, nir.Scale):
        return [(name, Scale(in_shape, _uniform(node.scale, "scale", name)))]
    if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
        params, per_neuron, gain, delay = _neuron_params(name, node, dialect, dt, reset, looped, tuple(in_shape))
        pop = Neurons(in_shape, params, input_delay=delay, per_neuron=per_neuron)
        gain = np.asarray(gain, dtype=np.float64)
        if not np.allclose(gain, gain.flat[0], rtol=1e-6, atol=0):   # one input gain per neuron: into the synapses
            row_gains[name] = gain
            return [(name, pop)]
        gain = float(gain.flat[0])
        if abs(gain - 1.0) > 1e-6:          # float32 tau/dt round trips leave ~1e-7
            return [(f"{name}.gain", Scale(in_shape, gain)), (name, pop)]
        return [(name, pop)]
    if isinstance(node, (nir.LI, nir.CubaLI, nir.I)):
        raise ValueError(f"NIR node {name!r}: non-spiking {type(node).__name__} readouts are not supported "
                         "(Lava's LIF spikes; export the layer as a spiking population)")
    raise ValueError(f"NIR node {name!r}: {type(node).__name__} is not supported")


def _pair(value) -> tuple[int, ...]:
    """A 2-d size as a pair: snntorch writes ``kernel_size=2`` of ``nn.AvgPool2d(2)`` as the 1-element ``[2]``."""
    flat = tuple(int(v) for v in np.ravel(value))
    return flat * 2 if len(flat) == 1 else flat


def _expected_dims(succs, nodes_in) -> int | None:
    import nir

    for s in succs:
        n = nodes_in[s]
        if isinstance(n, (nir.Affine, nir.Linear)):
            return 1
        if isinstance(n, (nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
            return 3
    return None


def _values(value, what: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A NIR neuron parameter as one value per neuron (an array of ``shape``; a single value is broadcast)."""
    arr = _np(value).reshape(-1)
    n = int(np.prod(shape))
    if arr.size == 1:
        return np.full(shape, float(arr[0]))
    if arr.size != n:
        raise ValueError(f"NIR node {name!r}: {what} has {arr.size} values for {n} neurons")
    return arr.reshape(shape)


def _neuron_params(name, node, dialect: str, dt: float, reset: str, looped: bool = False, shape=(1,)):
    """(NeuronParameters, per-neuron values, input gain, input delay) of a NIR neuron under ``dialect``'s
    discretisation: ``alpha``, ``v_th`` and ``bias`` one per neuron (:class:`Neurons` keeps those that differ),
    the gain a float or one per neuron; ``looped``: the neuron is in a loop with one synapse (snntorch's RLeaky)."""
    import nir

    meta = getattr(node, "metadata", None) or {}
    reset = meta.get("reset", reset)
    delay = int(meta.get("input_delay", 0))
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and abs(_uniform(v_reset, "v_reset", name)) > 0:
        raise ValueError(f"NIR node {name!r}: v_reset must be 0 (Lava resets to zero)")
    val = lambda v, what: _values(v, what, name, shape)  # noqa: E731
    v_th = val(node.v_threshold, "v_threshold")
    if not np.all(v_th > 0):
        raise ValueError(f"NIR node {name!r}: v_threshold must be > 0 for every neuron")
    r = val(node.r, "r")
    first = lambda a: float(a.reshape(-1)[0])  # noqa: E731
    if isinstance(node, nir.IF):
        gain = r if dialect == "norse" else r * dt
        return (NeuronParameters(alpha=1.0, v_th=first(v_th), reset=reset), {"v_th": v_th}, gain, delay)
    # norse 1.1's to_nir writes tau = dt / tau_inv = dt * tau (dt times too small): undo it
    tau_fix = (1.0 / dt) if dialect == "norse" else 1.0
    if isinstance(node, nir.LIF):
        tau = val(node.tau, "tau") * tau_fix
        if not np.all(tau >= dt):
            raise ValueError(f"NIR node {name!r}: tau={tau.min()} is shorter than dt={dt} (forward Euler is unstable)")
        v_leak = val(node.v_leak, "v_leak")
        alpha, bias = 1.0 - dt / tau, dt / tau * v_leak
        # RLeaky's zero reset (reset_delay=True) sets mem = 0 for the whole step after a spike, its input and
        # recurrent current dropped: our zero reset with one refractory step. Leaky's zeroes only the old mem.
        refractory = int(dialect == "snntorch" and reset == "zero" and "reset" not in meta and looped)
        return (NeuronParameters(alpha=first(alpha), v_th=first(v_th), reset=reset, bias=first(bias),
                                 refractory_steps=refractory), {"alpha": alpha, "v_th": v_th, "bias": bias},
                r * dt / tau, delay)
    tau_mem = val(node.tau_mem, "tau_mem") * tau_fix
    tau_syn = _uniform(node.tau_syn, "tau_syn", name) * tau_fix
    if not (np.all(tau_mem >= dt) and tau_syn > dt):
        raise ValueError(f"NIR node {name!r}: tau_mem={tau_mem.min()}, tau_syn={tau_syn} must exceed dt={dt}")
    w_in = _uniform(node.w_in, "w_in", name)
    v_leak = val(node.v_leak, "v_leak")
    alpha, alpha_syn = 1.0 - dt / tau_mem, 1.0 - dt / tau_syn
    g_v = r * dt / tau_mem
    refractory = 0
    if dialect == "norse":
        gain = w_in * g_v
    else:
        gain = w_in * dt / tau_syn * g_v
        if dialect == "snntorch" and reset == "zero" and "reset" not in meta:
            refractory = 1   # snntorch Synaptic's zero reset also drops the next step's input: v stays 0 one step
    bias = dt / tau_mem * v_leak
    return (NeuronParameters(alpha=first(alpha), alpha_syn=alpha_syn, v_th=first(v_th), reset=reset,
                             bias=first(bias), refractory_steps=refractory),
            {"alpha": alpha, "v_th": v_th, "bias": bias}, gain, delay)
