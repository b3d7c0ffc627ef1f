"""``Graph``: named nodes and directed edges; several edges into one node add up (additive skips).

Rules checked by :meth:`Graph.validate`: edges name existing nodes with matching shapes; ``Input`` nodes have
no incoming edge; every other node has at least one; an ``Output`` is fed by exactly one population
(``PopulationNode``: ``Neurons``, ``Integrator``, ...); every cycle passes through a population (recurrent
connections). ``forward`` is the float reference
with torch's timing: a feed-forward path has no latency and a recurrent edge carries the previous step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from spikes.graph.io import Input, Output
from spikes.graph.node import LinearNode, Node, PopulationNode


@dataclass(eq=False)
class Graph:
    """``nodes`` by name, ``edges`` as ``(source, target)`` pairs."""

    nodes: dict[str, Node]
    edges: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.edges = [(str(a), str(b)) for a, b in self.edges]
        self.validate()

    # -- structure -------------------------------------------------------------------------------------
    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def of_type(self, kind: type) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, kind)]

    @property
    def inputs(self) -> list[str]:
        return self.of_type(Input)

    @property
    def outputs(self) -> list[str]:
        return self.of_type(Output)

    @property
    def populations(self) -> list[str]:
        return self.of_type(PopulationNode)

    def validate(self) -> None:
        for a, b in self.edges:
            for n in (a, b):
                if n not in self.nodes:
                    raise ValueError(f"graph edge ({a!r} -> {b!r}) names unknown node {n!r}")
            out, inp = self.nodes[a].output_shape, self.nodes[b].input_shape
            if tuple(out) != tuple(inp):
                raise ValueError(f"graph edge {a!r} -> {b!r}: {a!r} gives shape {out}, {b!r} expects {inp}")
        for name, node in self.nodes.items():
            preds = self.predecessors(name)
            if isinstance(node, Input):
                if preds:
                    raise ValueError(f"Input node {name!r} has incoming edges from {preds}")
            elif not preds:
                raise ValueError(f"node {name!r} ({type(node).__name__}) has no incoming edge")
            if isinstance(node, Output) and (len(preds) != 1 or not isinstance(self.nodes[preds[0]], PopulationNode)):
                raise ValueError(f"Output node {name!r} must be fed by exactly one population, got {preds}")
        if not self.inputs:
            raise ValueError("graph has no Input node")
        self.linear_order()  # raises on a cycle of linear nodes

    def linear_order(self) -> list[str]:
        """Topological order in which edges out of populations are cut (so recurrent loops are allowed)."""
        indeg = {n: 0 for n in self.nodes}
        for a, b in self.edges:
            if not isinstance(self.nodes[a], PopulationNode):
                indeg[b] += 1
        ready = [n for n, d in indeg.items() if d == 0]
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            if isinstance(self.nodes[n], PopulationNode):
                continue
            for b in self.successors(n):
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
        if len(order) != len(self.nodes):
            stuck = sorted(set(self.nodes) - set(order))
            raise ValueError(f"graph has a cycle without a population through {stuck}")
        return order

    def recurrent_edges(self) -> set[tuple[str, str]]:
        """Edges that carry the previous step (torch timing): the back edges of a depth-first search from the
        inputs (each closes a loop, which always passes through a population)."""
        back: set[tuple[str, str]] = set()
        state: dict[str, int] = {}  # 1 on the stack, 2 done
        succ = {n: [] for n in self.nodes}
        for a, b in self.edges:
            succ[a].append(b)
        for root in self.inputs:
            if root in state:
                continue
            stack = [(root, iter(succ[root]))]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
        missing = [n for n in self.nodes if n not in state]
        if missing:
            raise ValueError(f"nodes {missing} are not reachable from any Input")
        return back

    # -- float reference -----------------------------------------------------------------------------
    def forward(self, inputs: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Output ``(T, B, *shape)`` of every population (spikes; potentials for graded ones such as
        ``Integrator``) for input ``(T, B, *shape)`` (float64, torch timing).

        ``out_P[t] = P.step(sum of the linear paths into P at step t - input_delay)``; an edge closing a loop
        uses step t-1.
        """
        inputs = self._input_dict(inputs)
        t_steps, batch = next(iter(inputs.values())).shape[:2]
        back = self.recurrent_edges()
        order = self.linear_order()
        state: dict[str, object] = {}
        prev = {n: torch.zeros(batch, *self.nodes[n].output_shape, dtype=torch.float64) for n in self.nodes}
        spikes = {p: [] for p in self.populations}
        history: dict[str, list[torch.Tensor]] = {p: [] for p in self.populations}
        for t in range(t_steps):
            values: dict[str, torch.Tensor] = {}
            pending = list(order)
            # populations are resolved lazily: evaluate nodes in an order where every non-recurrent source is known
            while pending:
                progressed = False
                for n in list(pending):
                    node = self.nodes[n]
                    preds = self.predecessors(n)
                    if isinstance(node, Input):
                        values[n] = inputs[n][t].to(torch.float64)
                    else:
                        srcs = []
                        ok = True
                        for a in preds:
                            if (a, n) in back:
                                srcs.append(prev[a])
                            elif a in values:
                                srcs.append(values[a])
                            else:
                                ok = False
                                break
                        if not ok:
                            continue
                        x = srcs[0]
                        for s in srcs[1:]:
                            x = x + s
                        if isinstance(node, LinearNode):
                            values[n] = node.apply(x)
                        elif isinstance(node, PopulationNode):
                            delay = node.input_delay  # type: ignore[attr-defined]
                            if delay:
                                history[n].append(x)
                                hist = history[n]
                                x = hist[-1 - delay] if len(hist) > delay else torch.zeros_like(x)
                            values[n], state[n] = node.step(x, state.get(n))
                        else:
                            values[n] = x
                    pending.remove(n)
                    progressed = True
                if not progressed:
                    raise ValueError(f"graph.forward cannot order nodes {pending} (a loop without a recurrent edge)")
            for p in self.populations:
                spikes[p].append(values[p])
            prev = values
        return {p: torch.stack(v) for p, v in spikes.items()}

    def _input_dict(self, inputs) -> dict[str, torch.Tensor]:
        if not isinstance(inputs, dict):
            if len(self.inputs) != 1:
                raise ValueError(f"graph has inputs {self.inputs}: pass a dict of tensors")
            inputs = {self.inputs[0]: inputs}
        out = {}
        for name in self.inputs:
            if name not in inputs:
                raise ValueError(f"missing input {name!r}")
            x = torch.as_tensor(inputs[name])
            shape = self.nodes[name].shape  # type: ignore[attr-defined]
            if x.dim() != len(shape) + 2 or tuple(x.shape[2:]) != tuple(shape):
                raise ValueError(f"input {name!r} must be (T, B, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
            out[name] = x
        return out
