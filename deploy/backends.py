"""One interface to every backend: ``run(graph, inputs, backend=...)``.

Backends: ``sim`` (our batched fixed-point simulator, bit-exact with ``lava-fixed``), ``sim-float`` (the
same engine with Lava's floating-point LIF), ``lava-fixed`` and ``lava-float`` (lava-nc's CPU simulation,
``Loihi2SimCfg`` with ``fixed_pt``/``floating_pt``) and ``torch`` (the graph's float reference with torch's
zero-latency timing, ``Graph.forward``). Lava runs a batch of B > 1 samples packed
(``spikes.deploy.lava_backend.run_lava_packed``: the samples side by side in one graph per pack, so the
process count does not grow with B); ``packed=False`` runs one graph copy per sample (``run_lava``), as a
single sample always does. Both give the same results.

Timing of the Lava-semantics backends: population P's spikes at step ``t + latency(P)`` are the torch
model's at step t (see ``spikes.deploy.network``); ``align=True`` shifts them back (dropping the first
``latency`` steps and padding the end with zeros) so all backends can be compared step by step.
"""
from __future__ import annotations

import numpy as np
import torch

from spikes.graph import Graph
from spikes.deploy.lava_backend import run_lava, run_lava_packed
from spikes.deploy.network import Network, lower
from spikes.deploy.populations.base import TRACES
from spikes.deploy.quantize import QNetwork, quantize
from spikes.deploy.sim import simulate

BACKENDS = ("sim", "sim-float", "lava-fixed", "lava-float", "torch")


def _inputs(graph_or_net, inputs) -> dict[str, np.ndarray]:
    names = list(graph_or_net.inputs)
    if not isinstance(inputs, dict):
        if len(names) != 1:
            raise ValueError(f"network has inputs {names}: pass a dict")
        inputs = {names[0]: inputs}
    return {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in inputs.items()}


def run(model: Graph | Network | QNetwork, inputs, backend: str = "sim", align: bool = False, states: bool = True,
        qnet: QNetwork | None = None, packed: bool = True, **quantize_options) -> dict:
    """Spikes (and final states) per population for ``inputs`` ``(T, B, *shape)`` (or a dict by input name).

    ``model``: a ``Graph`` (lowered and, for fixed point, quantised here), a lowered ``Network`` or a
    ``QNetwork``. Returns ``{population: {"spikes": (T, B, *shape), "u", "v": (B, *shape)}}``; graded
    populations (``Integrator``) give ``"values"`` instead of ``"spikes"`` (integers in fixed point: decode
    with the quantised population's ``decode``). ``packed``: Lava backends run a batch packed (module docstring).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "torch":
        if not isinstance(model, Graph):
            raise ValueError("backend 'torch' needs a Graph")
        x = _inputs(model, inputs)
        with torch.no_grad():        # a graph captured from a model may hold tensors that require grad
            out = model.forward({k: torch.as_tensor(v, dtype=torch.float64) for k, v in x.items()})
        return {k: ({"values": v.numpy()} if model.nodes[k].graded else {"spikes": v.numpy().astype(np.uint8)})
                for k, v in out.items()}
    net = lower(model) if isinstance(model, Graph) else model
    fixed = backend in ("sim", "lava-fixed")
    if fixed and not isinstance(net, QNetwork):
        net = qnet if qnet is not None else quantize(net, **quantize_options)
    if not fixed and isinstance(net, QNetwork):
        raise ValueError(f"backend {backend!r} runs floating point: pass the Graph or the lowered Network")
    x = _inputs(net, inputs)
    if backend.startswith("sim"):
        result = simulate(net, x)
    else:
        batch = next(iter(x.values())).shape[1]
        if packed and batch > 1:
            result = run_lava_packed(net, x, fixed=fixed, states=states)
        else:
            per = run_lava([(net, {k: v[:, b] for k, v in x.items()}) for b in range(batch)], fixed=fixed,
                           states=states)
            result = {}
            for name in net.populations:
                result[name] = {k: np.stack([p[name][k] for p in per], axis=1 if k in TRACES else 0)
                                for k in per[0][name]}
    if align:
        for name, pop in net.populations.items():
            for key in TRACES:
                if key not in result[name]:
                    continue
                s = result[name][key]
                shifted = np.zeros_like(s)
                lat = pop.latency
                if lat < s.shape[0]:
                    shifted[: s.shape[0] - lat] = s[lat:]
                result[name][key] = shifted
    return result
