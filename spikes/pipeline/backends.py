"""Deploying a stage's trained model to the chip backends (``sim``, ``lava-fixed``) through ``spikes.deploy``.

``deploy_hook()`` returns the callable the stages call as ``hook(stage_result, summary, model, x, y,
deployer=None)``: the ``deployer`` (default :func:`deploy_classifier`; a stage passes its own for another
task metric) captures the model as a graph (``spikes.graph.capture``), lowers and quantises it once
(``spikes.deploy.network.lower``, ``spikes.deploy.quantize.quantize``), runs the test inputs on each
backend (``spikes.deploy.backends.run``) and returns ``{backend: BackendResult}`` (metric and per-layer
rows), which the hook adds to ``summary.backends``.
Where the model cannot be deployed (``capture``/``quantize`` refuse it, e.g. ALIF thresholds or a model
that is not a torch graph), the hook adds the deploy module's own reason as a note and leaves
``summary.backends`` empty: nothing is made up.

Backend rows, one per population (named after the torch layer it came from, matched in model order):
``firing_rate`` = spikes / (neurons * T) with the backend's spikes aligned to torch time (the input is
padded with ``L`` zero steps, ``L`` = the deepest population's latency, and ``align=True`` shifts each
population back by its latency); ``synops`` = synaptic operations per sample into that population, counted
on the lowered network the chip runs: ``sum_j spikes_j * fan_out_j`` over every incoming projection
(``fan_out_j``: see :func:`fan_out`; conv counted with unit weights, borders exact, as SpikeProbe does).
A graded population (a non-spiking ``Integrator`` readout) has ``firing_rate`` None; its non-zero values
count as its outgoing events (:func:`layer_rows`).
Lowering folds linear chains (e.g. pool + conv, or conv + PLIF gain, into one sparse projection) and
quantisation drops sparse weights that round to 0, so chip synops can differ from the torch probe's
per-layer count by construction (they count what the chip stores and executes).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from spikes.deploy.backends import run
from spikes.deploy.network import lower
from spikes.deploy.quantize import quantize
from spikes.graph import capture
from spikes.neurons import SpikingNeuron
from spikes.reports.summary import BackendResult

BACKENDS = ("sim", "lava-fixed")
LAVA_SAMPLES = None        # lava-fixed runs every test sample (packed: spikes.deploy.lava_backend.run_lava_packed)


def fan_out(proj) -> np.ndarray:
    """Synapses leaving each source neuron of a lowered projection (flat, C order): dense: all rows; conv:
    every kernel tap that lands on an output position; sparse: the stored entries (after quantisation)."""
    if proj.kind == "dense":     # a dense matrix: every row is a synapse, whatever its value
        return np.full(proj.weight.shape[1], float(proj.weight.shape[0]))
    if proj.kind == "sparse":   # stored entries per column, counted on the CSR indices (no CSC copy)
        w = sp.csr_matrix(proj.weight)
        return np.bincount(w.indices, minlength=w.shape[1]).astype(np.float64)
    c = proj.conv
    x = torch.ones(1, *c.input_shape, dtype=torch.float64, requires_grad=True)
    w = torch.ones(np.shape(proj.weight), dtype=torch.float64)        # every kernel tap, as the probe counts
    torch.nn.functional.conv2d(x, w, None, c.stride, c.padding, c.dilation, c.groups).sum().backward()
    return x.grad.reshape(-1).numpy()


def population_names(model, graph) -> dict[str, str]:
    """Graph population -> torch layer name, by order (falls back to the population names)."""
    pops = sorted(graph.populations, key=lambda p: int(p.split("_")[0]) if p.split("_")[0].isdigit() else 0)
    names = [n for n, m in model.named_modules() if isinstance(m, SpikingNeuron)]
    return dict(zip(pops, names)) if len(names) == len(pops) else {p: p for p in pops}


def run_aligned(qnet, x: np.ndarray, backend: str) -> dict[str, np.ndarray]:
    """Outputs ``(T, B, N)`` per population on ``backend`` for ``x (T, B, *shape)``, aligned to torch time:
    spikes as float64, a graded population's values as the backend gives them (integers in fixed point)."""
    T, B = x.shape[:2]
    lat = max(p.latency for p in qnet.populations.values())
    xp = np.concatenate([x, np.zeros((lat, *x.shape[1:]), dtype=x.dtype)])
    out = run(qnet, xp, backend=backend, align=True, states=False)
    return {k: (out[k]["spikes"].astype(np.float64) if "spikes" in out[k] else out[k]["values"])[:T].reshape(T, B, -1)
            for k in qnet.populations}


def layer_rows(net, spikes: dict[str, np.ndarray], x: np.ndarray, names: dict[str, str],
               values: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Per-population rows of one backend run (see the module docstring), populations in latency order.

    ``spikes``: ``(T, B, N)`` per spiking population; ``values``: ``(T, B, N)`` per graded population (e.g. an
    ``Integrator`` readout), whose row has ``firing_rate`` and ``density`` None; its non-zero values count as
    the events it sends on. ``synops`` is per sample, into each population.
    """
    T, B = x.shape[:2]
    events = {name: x.reshape(T, B, -1).astype(np.float64).sum((0, 1)) for name in net.inputs}
    events.update({k: s.sum((0, 1)) for k, s in spikes.items()})
    events.update({k: (np.asarray(v) != 0).sum((0, 1)).astype(np.float64) for k, v in (values or {}).items()})
    rows = []
    for pop in sorted(net.populations, key=lambda p: net.populations[p].latency):
        syn = sum(float(events[p.src] @ fan_out(p)) for p in net.incoming(pop))
        rate = float(spikes[pop].mean()) if pop in spikes else None
        rows.append({"layer": names.get(pop, pop), "firing_rate": rate, "density": rate, "synops": syn / B,
                     "neurons": int(net.populations[pop].size), "steps": int(T)})
    return rows


def backend_result(net, spikes: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, names: dict[str, str]):
    """Accuracy (argmax of output spike counts) and per-population rows of one backend run."""
    B = x.shape[1]
    rows = layer_rows(net, spikes, x, names)
    out_pop = next(iter(net.outputs.values()))
    pred = spikes[out_pop].sum(0).argmax(1)
    return BackendResult(metric=float((pred == np.asarray(y)[:B]).mean()), per_layer=rows, samples=int(B))


def deploy_classifier(model, x_time_first: np.ndarray, y: np.ndarray, backends=BACKENDS,
                      lava_samples: int | None = LAVA_SAMPLES, progress: bool = True) -> dict:
    """Capture, lower, quantise ``model`` once; run each backend; ``{backend: BackendResult}``. ``lava_samples``:
    the first test samples lava-fixed runs (None: all)."""
    graph = capture(model, tuple(x_time_first.shape[2:]))
    net = lower(graph)
    qnet = quantize(net)
    names = population_names(model, graph)
    results = {}
    for b in tqdm(backends, desc="deploy", leave=False, disable=not progress):
        xb = x_time_first if b == "sim" or lava_samples is None else x_time_first[:, :lava_samples]
        results[b] = backend_result(qnet, run_aligned(qnet, xb, b), xb, y, names)
    return results


def deploy_hook(backends: tuple[str, ...] = BACKENDS, lava_samples: int | None = LAVA_SAMPLES,
                progress: bool = True) -> Callable:
    """The per-model deploy step used by :func:`spikes.pipeline.run_demo` (see the module docstring)."""
    def hook(res, summary, model, x, y, deployer: Callable | None = None) -> None:
        """``x``: time-first test inputs ``(T, N, *shape)`` (torch tensor), ``y``: labels ``(N,)`` or None;
        ``deployer(model, x, y, backends, lava_samples, progress) -> {backend: BackendResult}`` (``lava_samples``
        None: every test sample; a deployer may cap it and says why in its stage's notes)."""
        if deployer is None and not isinstance(model, torch.nn.Module):
            res.notes.append(f"{summary.label}: not deployed: spikes.deploy captures torch modules; this stage's "
                             f"model is a {type(model).__name__}.")
            return
        try:
            xt = x.contiguous().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
            if deployer is not None:
                summary.backends.update(deployer(model, xt, None if y is None else np.asarray(y), backends,
                                                 lava_samples, progress))
            elif y is None:   # no class labels: capture only, to learn whether (and why not) it deploys
                capture(model, tuple(xt.shape[2:]))
                res.notes.append(f"{summary.label}: captured, but the pipeline has no task metric for it on "
                                 "the chip backends yet: not run.")
                return
            else:
                summary.backends.update(deploy_classifier(model, xt, np.asarray(y), backends, lava_samples,
                                                          progress))
        except ValueError as e:   # capture/quantize refuse what the chip cannot express, naming the layer
            res.notes.append(f"{summary.label}: not deployed: {e}")
            return
        n_all = xt.shape[1] if xt.ndim > 2 or deployer is None else xt.shape[0]
        lava = summary.backends.get("lava-fixed")       # a deployer may run fewer samples than asked
        ran = lava.samples if lava is not None and lava.samples is not None else lava_samples
        ran = n_all if ran is None else ran
        if "lava-fixed" in backends and ran < n_all:
            res.notes.append(f"{summary.label}: lava-fixed ran the first {ran} of {n_all} test samples; torch and "
                             f"sim ran all {n_all}.")
        note = synops_note(summary)
        if note:
            res.notes.append(note)

    return hook


def synops_note(summary, tolerance: float = 0.1) -> str | None:
    """Why the chip's synaptic operations differ from torch's, when ``sim``'s total is more than ``tolerance``
    away from the torch probe's (module docstring: counted on the lowered network)."""
    def total(rows) -> float | None:
        vals = [r.get("synops") for r in rows or [] if r.get("synops") is not None]
        return float(sum(vals)) if vals else None

    torch_ops = total(summary.per_layer)
    sim = summary.backends.get("sim")
    chip_ops = total(sim.per_layer) if sim is not None else None
    if not torch_ops or chip_ops is None or abs(chip_ops - torch_ops) <= tolerance * torch_ops:
        return None
    return (f"{summary.label}: synops per sample torch {torch_ops:.3g} vs sim {chip_ops:.3g} ({chip_ops / torch_ops:.2f}x): "
            "the chip's are counted on the lowered network it runs, where linear chains are folded (a pooling or "
            "upsampling into the next conv: each spike then drives the folded synapses itself, instead of the "
            "pooled or upsampled values driving the conv) and weights that quantise to 0 are dropped.")
