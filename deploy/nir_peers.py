"""Our graphs rewritten for the NIR importers of other libraries: snntorch's ``import_from_nir`` and norse's
``from_nir`` (what :func:`spikes.deploy.nir_io.to_nir` does with ``dialect="snntorch"`` / ``"norse"``).

A NIR graph is only as portable as its consumer's importer. What the two read, and how each of our populations
``v = alpha v + i (+ bias)``, zero reset, must be written so that they run it step for step:

- **snntorch** (``import_from_nir``, snntorch 0.9-1.0) discretises with ``dt = 1e-4`` hard-coded: LIF ->
  ``Leaky(beta = 1 - dt/tau, threshold = v_th / (r dt/tau))``, CubaLIF -> ``Synaptic`` (``alpha = 1 - dt/tau_syn``,
  input gain ``w_in dt/tau_syn``, requires ``r = tau_mem/dt``), a LIF/CubaLIF in a loop with one Affine/Linear ->
  ``RLeaky``/``RSynaptic`` (the recurrent weight acts on the previous step's spikes, as ours); every neuron it
  builds resets to zero at once (``reset_mechanism="zero"``, ``reset_delay=False``) and has one threshold per
  layer. It asserts ``v_leak = 0`` and has no Scale, SumPool2d or IF (its IF becomes a leaky ``Leaky(beta=0.9)``).
  So we write ``tau = dt/(1 - alpha)``, ``r = tau/dt``, ``w_in = tau_syn/dt`` with ``dt = 1e-4``.
- **norse** (``from_nir``, norse 1.1) with ``dt = 1e-3``: LIF -> ``LIFBoxCell``, ``v += dt/tau (v_leak - v + x)``:
  it ignores ``r``, so the input gain ``dt/tau = 1 - alpha`` is undone by scaling the synapses in front of the
  population by ``1 / (1 - alpha)``; CubaLIF -> ``w_in x`` through a ``LIBoxCell`` synapse (time constant
  ``tau_syn``, which also receives ``v_leak``) and ``r i`` into a ``LIFBoxCell``: unit gains with ``w_in =
  tau_syn/dt``, ``r = tau_mem/dt``. Resets go to ``v_reset = 0``. It reads SumPool2d (as ``LPPool2d(1)``) but
  not AvgPool2d: an average pool is written as a sum pool and its ``1/(kh kw)`` moved into the synapses after it.
  Per-neuron time constants, thresholds and leaks are kept (its parameters are tensors).
- Both importers build ``torch.nn.Flatten(start_dim, end_dim)`` from NIR's dimensions, which count no batch axis
  (``start_dim = 0``; 1 fails NIR's type check in ``nir.read``): the module they build flattens whatever it is
  given from dimension 0, so it runs one sample at a time (``(C, H, W)`` in, no batch axis), or in batches after
  setting its ``Flatten`` modules' ``start_dim = 1``.

A Scale node (an imported input gain) is folded into the synapse in front of it. Whatever a peer cannot run is
refused before anything is written, by :class:`PeerExportError` naming every such layer and why.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from spikes.graph import AvgPool2d, Affine, Conv2d, Flatten, Graph, Input, Neurons, Output, Scale, SumPool2d

PEER_DT = {"snntorch": 1e-4, "norse": 1e-3}
PEER_IMPORTER = {"snntorch": "snntorch.import_nir.import_from_nir", "norse": "norse.torch.from_nir"}
SYNAPSES = (Affine, Conv2d)


class PeerExportError(ValueError):
    """A graph has layers a peer's NIR importer cannot run; ``problems`` lists ``(layer, why)``."""

    def __init__(self, peer: str, problems: list[tuple[str, str]]):
        self.peer, self.problems = peer, problems
        lines = "; ".join(f"layer {name!r}: {why}" for name, why in problems)
        super().__init__(f"NIR export for {peer} ({PEER_IMPORTER[peer]}) cannot represent {len(problems)} "
                         f"layer(s): {lines}")


def _scaled(node, factor, bias: bool = True):
    """``node`` (Affine or Conv2d) with its weight (and, with ``bias``, its bias) times ``factor``: a number, or one
    per output (Affine rows, Conv2d channels)."""
    f = np.asarray(factor, dtype=np.float64).reshape(-1)
    if f.size > 1 and isinstance(node, Conv2d):
        f = f.reshape(node.weight.shape[0], -1)[:, 0]          # checked constant per channel (problems_for)
    w = np.asarray(node.weight) * (f.reshape(-1, *([1] * (np.ndim(node.weight) - 1))) if f.size > 1 else f[0])
    b = node.bias if node.bias is None or not bias else np.asarray(node.bias) * (f if f.size > 1 else f[0])
    return replace(node, weight=w, bias=b)


def problems_for(graph: Graph, peer: str) -> list[tuple[str, str]]:
    """``(layer, why)`` for every node of ``graph`` that ``peer``'s importer cannot run as we do."""
    if peer not in PEER_DT:
        raise ValueError(f"unknown NIR peer {peer!r}; choose one of {sorted(PEER_DT)}")
    out: list[tuple[str, str]] = []
    for name, node in graph.nodes.items():
        if isinstance(node, Neurons):
            p = node.params
            if p.reset != "zero":
                out.append((name, f"resets by subtraction; {peer}'s importer builds neurons that reset to zero "
                                  "(train with a zero-reset neuron, e.g. model.neuron = 'lif_zero')"))
            if p.refractory_steps:
                out.append((name, f"has {p.refractory_steps} refractory step(s); {peer}'s neurons have none"))
            if p.adaptive:
                out.append((name, f"adapts its threshold (ALIF); {peer}'s importer has no adaptive neuron"))
            if node.input_delay:
                out.append((name, f"takes its input {node.input_delay} step(s) late; {peer}'s neurons do not"))
            alpha = node.values("alpha")
            if np.any(alpha >= 1.0):
                out.append((name, "has no leak (IF); " + ("snntorch's importer turns NIR IF into Leaky(beta=0.9)"
                                                          if peer == "snntorch" else "norse's IAFCell integrates "
                                                          "with its own input gain, not ours")))
            if "v_th" in node.per_neuron and peer == "snntorch":
                out.append((name, f"{len(np.unique(node.per_neuron['v_th']))} different thresholds; snntorch's "
                                  "importer takes one threshold per layer"))
            if np.any(node.values("bias")) and peer == "snntorch":
                out.append((name, "has a bias (NIR v_leak); snntorch's importer refuses v_leak != 0"))
            if np.any(node.values("bias")) and p.has_current and peer == "norse":
                out.append((name, "a current-based population with a bias: norse's CubaLIF importer adds v_leak to "
                                  "its synaptic current too"))
            if peer == "norse" and not p.has_current:
                for src in graph.predecessors(name):
                    if isinstance(graph.nodes[src], Conv2d) and "alpha" in node.per_neuron and not np.all(
                            alpha.reshape(alpha.shape[0], -1) == alpha.reshape(alpha.shape[0], -1)[:, :1]):
                        out.append((name, f"time constants that differ within a channel behind the conv {src!r}: "
                                          "norse's LIF input gain dt/tau would need a gain per neuron, a conv has "
                                          "one per channel"))
                    if not isinstance(graph.nodes[src], (*SYNAPSES, Scale)) or len(graph.successors(src)) != 1:
                        out.append((name, f"its input comes from {src!r} ({type(graph.nodes[src]).__name__}), which "
                                          "is not a synapse feeding it alone: norse's LIF scales its input by "
                                          "dt/tau and there is no synapse to carry the inverse gain"))
        elif isinstance(node, Scale):
            preds = graph.predecessors(name)
            if len(preds) != 1 or not isinstance(graph.nodes[preds[0]], SYNAPSES) or \
                    len(graph.successors(preds[0])) != 1:
                out.append((name, f"a gain {node.gain:g} that is not behind a synapse of its own, and {peer}'s "
                                  "importer has no Scale node"))
        elif isinstance(node, SumPool2d):
            if peer == "snntorch" and not isinstance(node, AvgPool2d):
                out.append((name, "a sum pool; snntorch's importer reads AvgPool2d only"))
            if peer == "norse" and isinstance(node, AvgPool2d) and _after_pool(graph, name) is None:
                out.append((name, "an average pool not followed by synapses that could take its 1/(kh kw); norse's "
                                  "importer reads SumPool2d only"))
        elif not isinstance(node, (Input, Output, Affine, Conv2d, Flatten)):
            out.append((name, f"{type(node).__name__} has no node in {peer}'s NIR importer"))
    return out


def _after_pool(graph: Graph, name: str) -> list[str] | None:
    """The synapses right after pool ``name`` (through Flattens), if each is fed by that path alone; else None."""
    found, frontier = [], [name]
    while frontier:
        n = frontier.pop()
        for s in graph.successors(n):
            if len(graph.predecessors(s)) != 1:
                return None
            node = graph.nodes[s]
            if isinstance(node, Flatten):
                frontier.append(s)
            elif isinstance(node, SYNAPSES):
                found.append(s)
            else:
                return None
    return found or None


def graph_for_peer(graph: Graph, peer: str) -> Graph:
    """``graph`` rewritten so that ``peer``'s importer runs it as we do (module docstring), or
    :class:`PeerExportError` naming every layer it cannot represent."""
    problems = problems_for(graph, peer)
    if problems:
        raise PeerExportError(peer, problems)
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in graph.nodes.items():        # Scale -> folded into the synapse before it
        if isinstance(node, Scale):
            (src,) = graph.predecessors(name)
            nodes[src] = _scaled(nodes[src], node.gain)
            del nodes[name]
            edges = [(src, b) if a == name else (a, b) for a, b in edges if b != name]
    if peer == "norse":
        g = Graph(nodes, edges)
        for name, node in g.nodes.items():
            if isinstance(node, Neurons) and not node.params.has_current:   # LIFBoxCell's input gain dt/tau
                for src in g.predecessors(name):
                    nodes[src] = _scaled(nodes[src], 1.0 / (1.0 - node.values("alpha")))
            elif isinstance(node, AvgPool2d):                                # -> sum pool, 1/(kh kw) after it
                for dst in _after_pool(g, name):
                    nodes[dst] = _scaled(nodes[dst], 1.0 / float(np.prod(node.kernel)), bias=False)
                nodes[name] = SumPool2d(node.in_shape, node.kernel, node.stride, node.padding)
    return Graph(nodes, edges)
