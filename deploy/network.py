"""Lowered network: populations joined by projections, with Lava's timing (what ``sim`` and Lava run).

``lower(graph)`` folds every chain of linear nodes between two populations (or an input and a population)
into one projection (``dense`` matrix, ``conv`` kept as a convolution, or ``sparse`` matrix composed
from the nodes' own matrices, ``spikes.graph.matrix``, or probed on basis vectors for nodes without
a rule), sums the constant terms (layer biases) into the target population's
per-neuron bias, and assigns delays. Timing: every projection delivers at step t what its source sent at
step ``t - delay`` (Lava: one step per Dense/Sparse/Conv, ``DelaySparse`` adds more). Population latency
``L(P) = max over forward projections of L(S) + 1 - d(P)`` (inputs: 0; ``d(P)`` the population's
``input_delay``); a forward projection gets ``delay = L(P) + d(P) - L(S)`` (shorter skip paths are
delayed to align), a recurrent one (closing a loop) one step more. So the spikes of P at step ``t + L(P)`` equal those of the torch model at step t
(a bias acts from step 0, so kinds cancel its first ``L(P)`` steps: LIF starts its state at the values those
steps bring back to the torch start, ``spikes.deploy.populations.lif``; ``Integrator`` switches its bias on at
``L(P)``). Constant input currents (layer biases) are folded into the population's bias by its kind
(``spikes.deploy.populations``; LIF: the steady state ``c / (1 - alpha_syn)`` on v, and the synaptic current
starts at the transient that makes the sum exact).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from spikes.graph import Affine, Conv2d, Graph, Input, LinearNode, Neurons, PopulationNode
from spikes.graph.matrix import chain_matrix
from spikes.deploy.populations import kind_of

MAX_DENSE_ELEMENTS = 4_000_000  # a probed chain above this size is kept sparse


@dataclass(eq=False)
class Population:
    """A lowered population: its graph ``node`` (which fixes its kind, ``spikes.deploy.populations``)."""

    name: str
    shape: tuple[int, ...]
    node: PopulationNode
    bias: np.ndarray            # (N,) float, flat in C order: the node's own bias plus incoming constants
    latency: int = 0
    input_current: np.ndarray | None = None   # (N,) the incoming constants alone (before the kind folded them)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def params(self):
        """The node's neuron parameters (``Neurons``), or None."""
        return getattr(self.node, "params", None)


@dataclass(eq=False)
class Projection:
    """``a_dst[t] += W s_src[t - delay]``; ``kind`` dense (``weight`` (Nout, Nin) array), sparse (csr) or conv."""

    src: str
    dst: str
    kind: str
    weight: np.ndarray | sp.csr_matrix
    delay: int = 1
    recurrent: bool = False
    conv: Conv2d | None = None  # geometry of a conv projection (weight = conv.weight)

    @property
    def n_synapses(self) -> int:
        if self.kind == "sparse":
            return int(self.weight.nnz)
        if self.kind == "conv":
            c = self.conv
            return int(np.prod(c.output_shape) * np.prod(c.weight.shape[1:]))
        return int(np.count_nonzero(self.weight))

    def max_abs(self) -> float:
        w = self.weight.data if self.kind == "sparse" else self.weight
        return float(np.abs(w).max()) if np.size(w) else 0.0

    def row_l1(self) -> np.ndarray:
        """Sum of |w| into each target neuron (flat)."""
        if self.kind == "sparse":
            return np.asarray(abs(self.weight).sum(axis=1)).ravel()
        if self.kind == "dense":
            return np.abs(self.weight).sum(axis=1)
        c = self.conv
        ones = torch.ones(1, *c.input_shape, dtype=torch.float64)
        return torch.nn.functional.conv2d(ones, torch.as_tensor(np.abs(c.weight)), None, c.stride, c.padding,
                                          c.dilation, c.groups).reshape(-1).numpy()


@dataclass(eq=False)
class Network:
    inputs: dict[str, tuple[int, ...]]
    populations: dict[str, Population]
    projections: list[Projection]
    outputs: dict[str, str] = field(default_factory=dict)   # output node -> population
    sequence: list[str] = field(default_factory=list)       # populations, sources of forward projections first

    def order(self) -> list[str]:
        """Populations in an order where every forward projection's source comes first."""
        return list(self.sequence) if self.sequence else sorted(self.populations, key=lambda p: self.populations[p].latency)

    def incoming(self, pop: str) -> list[Projection]:
        return [p for p in self.projections if p.dst == pop]

    def shape_of(self, name: str) -> tuple[int, ...]:
        return self.inputs[name] if name in self.inputs else self.populations[name].shape


def _sources(graph: Graph, pop: str) -> tuple[list[str], set[str]]:
    """Sources (inputs/populations) feeding ``pop`` through linear nodes, and the linear nodes between."""
    sources, linear, stack = [], set(), list(graph.predecessors(pop))
    while stack:
        n = stack.pop()
        node = graph.nodes[n]
        if isinstance(node, (Input, PopulationNode)):
            if n not in sources:
                sources.append(n)
        elif isinstance(node, LinearNode):
            if n not in linear:
                linear.add(n)
                stack.extend(graph.predecessors(n))
        else:
            raise ValueError(f"node {n!r} ({type(node).__name__}) cannot feed population {pop!r}")
    return sources, linear


def _evaluate(graph: Graph, pop: str, linear: set[str], active: str | None, x: torch.Tensor | None,
              bias: bool, batch: int) -> torch.Tensor:
    """The summed input of ``pop`` when source ``active`` holds ``x`` and every other source is zero."""
    memo: dict[str, torch.Tensor] = {}

    def value(n: str) -> torch.Tensor:
        if n in memo:
            return memo[n]
        node = graph.nodes[n]
        if n not in linear:
            v = x if n == active else torch.zeros(batch, *node.output_shape, dtype=torch.float64)
        else:
            preds = graph.predecessors(n)
            total = value(preds[0])
            for p in preds[1:]:
                total = total + value(p)
            v = node.apply(total, bias=bias)
        memo[n] = v
        return v

    preds = graph.predecessors(pop)
    out = value(preds[0])
    for p in preds[1:]:
        out = out + value(p)
    return out.reshape(batch, -1)


def _path_is_single(graph: Graph, src: str, pop: str, linear: set[str], kind: type) -> LinearNode | None:
    """The one linear node of ``kind`` if the only path from src to pop is src -> node -> pop."""
    between = [n for n in linear if src in graph.predecessors(n)]
    if len(between) != 1 or src in graph.predecessors(pop):
        return None
    node = graph.nodes[between[0]]
    if not isinstance(node, kind) or graph.predecessors(between[0]) != [src] or graph.successors(between[0]) != [pop]:
        return None
    if graph.predecessors(pop).count(between[0]) != 1:
        return None
    return node


def _probe(graph: Graph, pop: str, linear: set[str], src: str, n_in: int, n_out: int,
           chunk: int = 1024, cache: dict | None = None) -> np.ndarray | sp.csr_matrix:
    """The matrix of the linear chain src -> pop: composed from the nodes' own matrices
    (``spikes.graph.matrix``; ``cache`` shares it between sources that enter the chain at the same
    nodes), else probed on basis vectors (exact for these linear maps)."""
    key = (pop, n_in, tuple(sorted(n for n in graph.successors(src) if n in linear or n == pop)))
    mat = cache.get(key) if cache is not None else None
    if mat is None:
        mat = chain_matrix(graph, src, pop, linear)
    if mat is None:
        shape = graph.nodes[src].output_shape
        blocks = []
        for start in range(0, n_in, chunk):
            stop = min(start + chunk, n_in)
            eye = torch.zeros(stop - start, n_in, dtype=torch.float64)
            eye[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            cols = _evaluate(graph, pop, linear, src, eye.reshape(stop - start, *shape), False, stop - start)
            blocks.append(sp.csr_matrix(cols.numpy().T))
        mat = sp.hstack(blocks).tocsr()
    if cache is not None:
        cache[key] = mat
    mat = mat.copy()
    mat.eliminate_zeros()
    if n_in * n_out <= MAX_DENSE_ELEMENTS and mat.nnz > 0.25 * n_in * n_out:
        return mat.toarray()
    return mat


def lower(graph: Graph) -> Network:
    """The :class:`Network` of ``graph`` (see the module docstring for the timing)."""
    for name in graph.of_type(Neurons):
        per = graph.nodes[name].per_neuron  # type: ignore[attr-defined]
        if per:
            raise ValueError(f"layer {name!r} has per-neuron {', '.join(sorted(per))} ("
                             + ", ".join(f"{len(np.unique(v))} distinct {k}" for k, v in sorted(per.items()))
                             + "); Lava's LIF process and the sim backend take one du/dv/vth/bias per population. "
                             "Give the layer one value per population to deploy it (it runs in the float graph)")
    back = graph.recurrent_edges()
    chains: dict = {}   # chain matrices shared by sources entering a chain at the same nodes
    pops: dict[str, Population] = {}
    raw: list[tuple[str, str, bool, Projection]] = []
    for name in graph.populations:
        node: PopulationNode = graph.nodes[name]  # type: ignore[assignment]
        n = math.prod(node.shape)  # type: ignore[attr-defined]
        sources, linear = _sources(graph, name)
        const = _evaluate(graph, name, linear, None, None, True, 1).reshape(-1).numpy()
        pops[name] = Population(name, node.shape, node, kind_of(node).fold_bias(node, const),  # type: ignore[attr-defined]
                                input_current=const)
        for src in sources:
            recurrent = _crosses_back_edge(graph, src, name, linear, back)
            n_in = math.prod(graph.nodes[src].output_shape)
            single = _path_is_single(graph, src, name, linear, (Affine, Conv2d))
            if isinstance(single, Affine):
                proj = Projection(src, name, "dense", single.weight.copy())
            elif isinstance(single, Conv2d):
                geo = Conv2d(single.weight, single.in_shape, None, single.stride, single.padding, single.dilation,
                             single.groups)
                proj = Projection(src, name, "conv", geo.weight, conv=geo)
            else:
                w = _probe(graph, name, linear, src, n_in, n, cache=chains)
                proj = Projection(src, name, "dense" if isinstance(w, np.ndarray) else "sparse", w)
            proj.recurrent = recurrent
            raw.append((src, name, recurrent, proj))
    # latencies: longest forward path from the inputs
    # latencies in topological order of the forward projections: L(P) = max(L(S) + 1 - input_delay(P))
    delay_in = {p: graph.nodes[p].input_delay for p in pops}  # type: ignore[attr-defined]
    forward = [(s, d) for s, d, r, _ in raw if not r]
    indeg = {p: sum(1 for s, d in forward if d == p and s in pops) for p in pops}
    sequence, ready = [], [p for p in pops if indeg[p] == 0]
    while ready:
        p = ready.pop(0)
        sequence.append(p)
        for s, d in forward:
            if s == p:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
    if len(sequence) != len(pops):
        raise ValueError("forward projections form a loop: mark the recurrent edges")
    lat = {i: 0 for i in graph.inputs}
    for p in sequence:
        cands = [lat[s] + 1 - delay_in[p] for s, d in forward if d == p and s in lat]
        if not cands:
            raise ValueError(f"population {p!r} gets no forward input from any Input")
        lat[p] = max(cands)
    for name, p in pops.items():
        if name not in lat:
            raise ValueError(f"population {name!r} gets no forward input from any Input")
        p.latency = lat[name]
    projections = []
    for s, d, r, proj in raw:
        proj.delay = lat[d] + delay_in[d] - lat[s] + (1 if r else 0)
        if proj.delay < 1:
            raise ValueError(f"recurrent projection {s!r} -> {d!r} needs a delay of {proj.delay} steps to keep the "
                             f"torch timing (source latency {lat[s]} > target latency {lat[d]}): not mappable")
        projections.append(proj)
    outputs = {o: graph.predecessors(o)[0] for o in graph.outputs}
    return Network({i: graph.nodes[i].shape for i in graph.inputs}, pops, projections, outputs,  # type: ignore[attr-defined]
                   sequence)


def _crosses_back_edge(graph: Graph, src: str, pop: str, linear: set[str], back: set[tuple[str, str]]) -> bool:
    """Whether the paths from src to pop use a back edge (all of them must agree)."""
    flags: set[bool] = set()

    def walk(n: str, used: bool) -> None:
        for s in graph.successors(n):
            e = used or (n, s) in back
            if s == pop:
                flags.add(e)
            elif s in linear:
                walk(s, e)

    walk(src, False)
    if len(flags) > 1:
        raise ValueError(f"{src!r} reaches {pop!r} both directly and through a recurrent loop: split the paths")
    return flags.pop()
