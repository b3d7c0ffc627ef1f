"""A differential GT classifier (``spikes.models.gt_network.GTNetwork``) as a deploy graph; its inputs per
(sample, candidate label) and the fewest-spikes decision on any backend.

``to_graph(net)`` (network2; network1 and network3 alike)::

    features (D,) -- b1: Affine(W1, c1) --> gt1: GTPotential (2 N1)      b1 = [u1; -u1],  u1 = [x; 1]
    gt1 (2 N1)    -- d2: Affine(Wd)     --> gt2: GT (2 N2)               b2 = [u2; -u2],  u2 = [d1; y]
    labels (M,)   -- y2: Affine(Wy)     --> gt2                          gt2 -> out: Output

``Q`` of each layer stays inside its population. Layer 1 outputs its potential ``v1[n]`` (its spikes are
``v1[n] > 0``) and ``Wd = [[I, -I], [0, 0], [-I, I], [0, 0]]`` forms ``[d1; 0; -d1; 0]`` with ``d1 = v1+ - v1-``;
the last layer outputs spikes. Both inputs are held constant over the iterations: ``features`` carries the
integer codes ``round(2**k x)`` (``input_bits`` k, default 12: the fixed-point backends need integer inputs,
the exact power of two keeps the weights exact, and a GT input with 18 fraction bits resolves ``2**-12``
anyway, its ``a_in << 6``), ``W1`` the factor ``2**-k`` and ``c1`` the constant feature;
``labels`` the sign code ``2 onehot - 1`` and ``Wy`` the label gain.

Timing: in Lava every connection adds one step, so a naive deployment would feed layer 2 with ``d1[n-1]``.
Instead each GT population starts at its latency (1 for layer 1, 2 for layer 2; it holds ``v0`` and sends
zeros before) and lowering delays the label input by one more step, so with ``align=True`` every backend
reproduces the torch model's timing ``d1[n]`` exactly (``spikes.deploy.populations.gt``); a run needs
``iterations + latency`` steps. ``GTNetwork.run(..., lag=1)`` measures what the naive timing would cost.
"""
from __future__ import annotations

import math

import numpy as np

from spikes.graph import GT, Affine, Graph, GTPotential, Input, Output
from spikes.deploy.backends import run


def _layer_inputs(net) -> list[tuple[bool, bool]]:
    """Per layer: (features enter, labels enter); layers after the first also get the previous layer's d."""
    arch = net.cfg.architecture
    if arch == "network1":
        return [(True, True)]
    return [(True, arch == "network3"), (False, True)]


def to_graph(net, input_bits: int | None = 12) -> Graph:
    """The graph of a trained ``GTNetwork`` (module docstring); ``input_bits`` None: features enter as floats
    (float backends only)."""
    if input_bits is not None and (int(input_bits) != input_bits or not 1 <= input_bits <= 16):
        raise ValueError(f"to_graph: input_bits must be an int in 1..16 or None, got {input_bits}")
    cfg = net.cfg
    d, m = net.n_features, net.n_classes
    x_gain = 1.0 if input_bits is None else 2.0**-input_bits
    nodes: dict = {"features": Input((d,)), "labels": Input((m,))}
    edges: list[tuple[str, str]] = []
    prev = None
    for k, (layer, (feat, lab)) in enumerate(zip(net.layers, _layer_inputs(net)), start=1):
        n = layer.n_units
        offset = 0                                       # where the next group of units starts in u
        pop = f"gt{k}"
        if prev is not None:                              # u = [d_prev; ...]
            n_prev = net.layers[k - 2].n_units
            w = np.zeros((2 * n, 2 * n_prev))
            i = np.arange(n_prev)
            w[i, i], w[i, n_prev + i], w[n + i, i], w[n + i, n_prev + i] = 1.0, -1.0, -1.0, 1.0
            nodes[f"d{k}"] = Affine(w)
            edges += [(prev, f"d{k}"), (f"d{k}", pop)]
            offset = n_prev
        if feat:                                          # u = [x; 1; ...]
            w = np.zeros((2 * n, d))
            i = np.arange(d)
            w[offset + i, i], w[n + offset + i, i] = x_gain, -x_gain
            c = np.zeros(2 * n)
            if cfg.bias_feature:
                c[offset + d], c[n + offset + d] = 1.0, -1.0
            nodes[f"b{k}"] = Affine(w, c)
            edges += [("features", f"b{k}"), (f"b{k}", pop)]
            offset += d + int(cfg.bias_feature)
        if lab:                                           # u = [...; y]
            w = np.zeros((2 * n, m))
            i = np.arange(m)
            w[offset + i, i], w[n + offset + i, i] = cfg.label_gain, -cfg.label_gain
            nodes[f"y{k}"] = Affine(w)
            edges += [("labels", f"y{k}"), (f"y{k}", pop)]
            offset += m
        if offset != n:
            raise ValueError(f"to_graph: layer {k} has {n} units but its inputs fill {offset}")
        last = k == len(net.layers)
        node_type = GT if last else GTPotential
        nodes[pop] = node_type.from_params(layer.params, 2 * n, v0=cfg.v0, name=f"to_graph: layer {pop!r}")
        prev = pop
    nodes["out"] = Output(nodes[prev].shape)
    edges.append((prev, "out"))
    return Graph(nodes, edges)


def gt_inputs(net, x: np.ndarray, steps: int, input_bits: int | None = 12) -> dict[str, np.ndarray]:
    """``{"features", "labels"}`` ``(steps, B * M, ·)``: every sample once per candidate label (row ``b M + c``),
    held constant; features as the codes ``round(2**k x)`` of ``to_graph``."""
    x = np.asarray(x, dtype=np.float64)
    m = net.n_classes
    if x.ndim != 2 or x.shape[1] != net.n_features:
        raise ValueError(f"gt_inputs: x must be (B, {net.n_features}) features, got shape {x.shape}")
    if steps < 1:
        raise ValueError(f"gt_inputs: steps must be >= 1, got {steps}")
    feats = x if input_bits is None else np.round(x * 2.0**input_bits)
    feats = np.repeat(feats, m, axis=0)
    codes = np.tile(2.0 * np.eye(m) - 1.0, (x.shape[0], 1))
    return {"features": np.broadcast_to(feats, (steps, *feats.shape)).copy(),
            "labels": np.broadcast_to(codes, (steps, *codes.shape)).copy()}


def spike_trains(result: dict, graph: Graph) -> dict[str, np.ndarray]:
    """0/1 spikes ``(T, R, N)`` per GT population of a backend result (a potential output: ``v > 0``)."""
    out = {}
    for name in graph.populations:
        r = result[name]
        out[name] = (r["values"] > 0).astype(np.uint8) if "values" in r else np.asarray(r["spikes"], np.uint8)
    return out


def spike_counts(net, graph: Graph, model, x: np.ndarray, backend: str, input_bits: int | None = 12,
                 chunk: int | None = None) -> np.ndarray:
    """Spikes ``(B, M, layers)`` of every sample and candidate label over ``net.cfg.iterations`` iterations.

    ``model``: the ``graph`` (``torch``), its lowered ``Network`` (``sim-float``, ``lava-float``) or the quantised
    ``QNetwork`` (``sim``, ``lava-fixed``). ``chunk``: rows (sample, label) per ``run`` call (default all; Lava
    packs a call's rows itself, ``spikes.deploy.lava_backend.run_lava_packed``).
    """
    its = net.cfg.iterations
    lat = 0 if backend == "torch" else max(p.latency for p in model.populations.values())
    inputs = gt_inputs(net, x, its + lat, input_bits)
    rows = inputs["labels"].shape[1]
    chunk = rows if chunk is None else max(1, int(chunk))
    pops = graph.populations
    counts = np.zeros((rows, len(pops)))
    for start in range(0, rows, chunk):
        part = {k: v[:, start:start + chunk] for k, v in inputs.items()}
        out = run(model, part, backend=backend, align=backend != "torch", states=False)
        trains = spike_trains(out, graph)
        counts[start:start + chunk] = np.stack([trains[p][:its].sum(axis=(0, 2)) for p in pops], axis=1)
    return counts.reshape(x.shape[0], net.n_classes, len(pops))


def predict(counts: np.ndarray) -> np.ndarray:
    """The label with the fewest spikes over all layers (the first on a tie, as ``GTNetwork.predict``)."""
    return counts.sum(axis=2).argmin(axis=1)


def layer_rows(net, graph: Graph, counts: np.ndarray) -> list[dict]:
    """Per-layer rows of the predicting run: firing rate = spikes / (neurons x iterations)."""
    pred = predict(counts)
    chosen = counts[np.arange(counts.shape[0]), pred]          # (B, layers)
    its = net.cfg.iterations
    rows = []
    for k, name in enumerate(graph.populations):
        neurons = math.prod(graph.nodes[name].shape)
        rows.append({"layer": name, "firing_rate": float(chosen[:, k].mean()) / (neurons * its), "density": None,
                     "synops": None, "neurons": neurons, "steps": its})
    return rows
