"""Stage (d): a differential growth-transform (GT) network on a scikit-learn data set (wine, no download), and the
training and deployment of GT networks that ``spikes gt`` shares.

Trained by the one trainer (:func:`spikes.training.train`, rule ``gt``: the local rule of
:mod:`spikes.learning.gt_local`; :func:`gt_run_config`, :func:`train_gt`); the predicted label is the one whose
run spikes least. Activity per layer (of the predicting run): neurons ``2 * units`` (differential
pairs), steps = GT iterations, firing rate = spikes / (neurons * iterations). ``spike_penalty`` records the
penalty current ``i_psi``. GT neurons couple through their continuous potentials (``Q v``), not spike
events, so synaptic operations per spike are not defined here: ``synops`` is left empty (no energy).

Deployed by :func:`deploy_gt`: the trained network's own graph (``GTNetwork.to_graph``: features as 12-bit codes,
label code and features held constant, ``GTNetwork.graph_inputs``), lowered and quantised once (fixed-point GT
kinds, ``spikes.deploy.populations.gt``), run on ``sim`` and ``lava-fixed`` for every test sample, once per
candidate label (Lava: the (sample, label) rows packed side by side, ``spikes.deploy.pack``, the coupling ``Q``
block-diagonal), with the same fewest-spikes decision and per-layer rows as the torch model.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from spikes.datasets.tabular import Split, load_split
from spikes.deploy.backends import run
from spikes.deploy.network import lower
from spikes.deploy.quantize import quantize
from spikes.graph import Graph
from spikes.models.gt_network import INPUT_BITS, GTNetwork, evaluate
from spikes.pipeline.record import StageResult
from spikes.reports.summary import BackendResult, RunSummary, write_summary
from spikes.training import CHECKPOINT_FILE, load_model, resolve_config, train
from spikes.training.callbacks import Callback
from spikes.training.config import RunConfig

FULL = {"dataset": "wine", "architecture": "network2", "eta": (1e-4, 1e-3), "epochs": 8, "iterations": 100}
QUICK = {**FULL, "epochs": 1, "iterations": 30}


# ------------------------------------------------------------------------------------------------ training
def gt_run_config(dataset: str = "wine", architecture: str = "network2", eta: tuple[float, ...] = (1e-4, 1e-3),
                  iterations: int = 100, epochs: int = 20, seed: int = 0, batch_size: int = 8, patience: int = 6,
                  label_gain: float | None = None, progress: bool = False, threads: int = 1) -> RunConfig:
    """The run config of a GT network trained with the local rule: model ``gt_network`` (``eta``: one learning
    rate per layer), rule ``gt``, the tabular set ``dataset``, the best validation epoch kept (ties: the later
    one) and an early stop after ``patience`` epochs without improvement. One thread by default: the GT tensors
    are tiny (<= 192 x 34), and a second intra-op thread made an epoch 25x slower on a loaded 2-core machine."""
    eta = tuple(eta)
    if len(eta) not in (1, 2):
        raise ValueError(f"gt_run_config: eta needs one learning rate per layer (1 or 2), got {eta}")
    model = {"kind": "gt_network", "architecture": architecture, "iterations": iterations, "eta1": eta[0],
             **({"eta2": eta[1]} if len(eta) == 2 else {}),
             **({} if label_gain is None else {"label_gain": label_gain})}
    return resolve_config(None, {
        "model": model, "rule": {"name": "gt"}, "data": {"dataset": dataset},
        "train": {"epochs": epochs, "batch_size": batch_size, "keep_best": True, "patience": patience, "seed": seed,
                  "checkpoint_every": 0, "threads": threads, "progress": progress}})


class EpochSpikes(Callback):
    """Training spikes per sample of every epoch (the rule's loss, ``state.epoch_loss / state.epoch_seen``), kept
    in ``history`` and in the summary as ``train_spikes_per_sample``."""

    def __init__(self):
        self.history: list[float] = []

    def on_epoch_end(self, state) -> None:
        self.history.append(state.epoch_loss / max(state.epoch_seen, 1))
        state.extra_summary["train_spikes_per_sample"] = list(self.history)


@dataclass
class GTRun:
    """A trained GT network and what its training measured: the trainer's ``summary``, the training spikes per
    sample and the validation accuracy of every epoch, and the epoch whose weights were kept (0-based)."""

    net: GTNetwork
    summary: dict[str, Any]
    train_spikes: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    @property
    def best_epoch(self) -> int:
        """The kept epoch: the last one with the best validation accuracy (``KeepBest`` gives ties to the later)."""
        if not self.val_accuracy:
            return len(self.train_spikes) - 1
        best = max(self.val_accuracy)
        return max(i for i, v in enumerate(self.val_accuracy) if v == best)


def train_gt(config: RunConfig, run_dir: str | Path, resume: bool = False, log=lambda m: None) -> GTRun:
    """Train ``config`` (a ``gt_network`` config, e.g. :func:`gt_run_config`) in ``run_dir`` with the one trainer
    and reload the kept network from its checkpoint. On a resume the training spikes cover the resumed epochs."""
    if config.model != "gt_network":
        raise ValueError(f"train_gt: trains model 'gt_network', the config has {config.model!r}")
    spikes = EpochSpikes()
    summary = train(config, run_dir, resume=resume, log=log, callbacks=[spikes])
    net, _, _ = load_model(Path(run_dir) / CHECKPOINT_FILE)
    return GTRun(net, summary, spikes.history, list(summary.get("val_history", [])))


def stage_config(p: dict = FULL, progress: bool = False) -> RunConfig:
    """The run config of the stage's GT training: local rule, batches of 8, the best validation epoch kept
    (early stop after 6 epochs without improvement)."""
    return gt_run_config(p["dataset"], p["architecture"], p["eta"], p["iterations"], p["epochs"], seed=0,
                         progress=progress)


def train_stage_network(p: dict = FULL, progress: bool = False, run_dir: Path | None = None) -> tuple[GTNetwork, Split]:
    """``(net, split)``: the stage's GT network trained by the trainer (rule ``gt``) in ``run_dir`` (default: a
    temporary folder; one that holds a checkpoint is resumed), and the data split (``spikes.datasets.tabular``)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(run_dir) if run_dir is not None else Path(tmp)
        net = train_gt(stage_config(p, progress), folder, resume=True).net
    return net, load_split(p["dataset"], seed=0)


# ------------------------------------------------------------------------------------------------ measuring
def gt_layer_rows(net: GTNetwork, x) -> list[dict]:
    """Per-layer rows of the run that predicts each sample of ``x`` (its fewest-spikes label)."""
    x = torch.as_tensor(x)
    pred, _ = net.predict(x)
    result = net.run(x, net.label_codes(pred))
    it = net.cfg.iterations
    rows = []
    for k, (layer, counts) in enumerate(zip(net.layers, result.spikes)):
        neurons = 2 * layer.n_units
        rows.append({"layer": f"gt{k + 1}", "firing_rate": float(counts.mean()) / (neurons * it),
                     "density": None, "synops": None, "neurons": neurons, "steps": it})
    return rows


def spike_trains(result: dict, graph: Graph) -> dict[str, np.ndarray]:
    """0/1 spikes ``(T, R, N)`` per GT population of a backend result (a ``GTPotential`` outputs its potential:
    its spikes are ``v > 0``, also on the integer potentials of the fixed-point backends)."""
    out = {}
    for name in graph.populations:
        r = result[name]
        out[name] = (r["values"] > 0).astype(np.uint8) if "values" in r else np.asarray(r["spikes"], np.uint8)
    return out


def spike_counts(net: GTNetwork, graph: Graph, model, x: np.ndarray, backend: str, input_bits: int | None = INPUT_BITS,
                 chunk: int | None = None) -> np.ndarray:
    """Spikes ``(B, M, layers)`` of every sample and candidate label over ``net.cfg.iterations`` iterations.

    ``graph``: ``net.to_graph(input_bits=input_bits)``; ``model``: the ``graph`` (``torch``), its lowered ``Network``
    (``sim-float``, ``lava-float``) or the quantised ``QNetwork`` (``sim``, ``lava-fixed``). ``chunk``: rows (sample,
    label) per ``run`` call (default all; Lava packs a call's rows itself, ``spikes.deploy.lava_backend``).
    """
    its = net.cfg.iterations
    lat = 0 if backend == "torch" else max(p.latency for p in model.populations.values())
    inputs = net.graph_inputs(x, its + lat, input_bits)
    rows = inputs["labels"].shape[1]
    chunk = rows if chunk is None else max(1, int(chunk))
    pops = graph.populations
    counts = np.zeros((rows, len(pops)))
    for start in range(0, rows, chunk):
        part = {k: v[:, start:start + chunk] for k, v in inputs.items()}
        out = run(model, part, backend=backend, align=backend != "torch", states=False)
        trains = spike_trains(out, graph)
        counts[start:start + chunk] = np.stack([trains[p][:its].sum(axis=(0, 2)) for p in pops], axis=1)
    return counts.reshape(np.asarray(x).shape[0], net.n_classes, len(pops))


def fewest_spikes(counts: np.ndarray) -> np.ndarray:
    """The label with the fewest spikes over all layers of ``counts`` ``(B, M, layers)`` (the first on a tie, as
    ``GTNetwork.predict``)."""
    return counts.sum(axis=2).argmin(axis=1)


def counts_layer_rows(graph: Graph, counts: np.ndarray, iterations: int) -> list[dict]:
    """Per-layer rows of the predicting run from backend ``counts`` ``(B, M, layers)``: firing rate = spikes /
    (neurons x iterations), as :func:`gt_layer_rows` on the torch model."""
    pred = fewest_spikes(counts)
    chosen = counts[np.arange(counts.shape[0]), pred]          # (B, layers)
    rows = []
    for k, name in enumerate(graph.populations):
        neurons = math.prod(graph.nodes[name].shape)
        rows.append({"layer": name, "firing_rate": float(chosen[:, k].mean()) / (neurons * iterations),
                     "density": None, "synops": None, "neurons": neurons, "steps": iterations})
    return rows


def deploy_gt(net: GTNetwork, x, y, backends=("sim", "lava-fixed"), lava_samples: int | None = None,
              progress: bool = True) -> dict:
    """``{backend: BackendResult}`` of the trained ``GTNetwork`` on features ``x`` (B, D) with labels ``y``.

    Converted (``net.to_graph``), lowered and quantised once; ``sim``, ``sim-float`` and ``torch`` run every
    sample, ``lava-fixed`` and ``lava-float`` the first ``lava_samples`` (None: all). Metric: accuracy of the
    fewest-spikes label; rows per layer of the predicting run (firing rate = spikes / (neurons x iterations)).
    """
    x = np.asarray(x, dtype=np.float64)
    graph = net.to_graph(input_bits=INPUT_BITS)
    lowered = lower(graph)
    qnet = quantize(lowered, input_max={"features": 2**INPUT_BITS, "labels": 1})
    models = {"sim": qnet, "lava-fixed": qnet, "sim-float": lowered, "lava-float": lowered, "torch": graph}
    results = {}
    for b in tqdm(backends, desc="deploy GT", leave=False, disable=not progress):
        if b not in models:
            raise ValueError(f"deploy_gt: unknown backend {b!r}; choose from {sorted(models)}")
        lava = b.startswith("lava")
        n = min(lava_samples, len(x)) if lava and lava_samples is not None else len(x)
        counts = spike_counts(net, graph, models[b], x[:n], b, INPUT_BITS)
        metric = None if y is None else float((fewest_spikes(counts) == np.asarray(y)[:n]).mean())
        results[b] = BackendResult(metric=metric, per_layer=counts_layer_rows(graph, counts, net.cfg.iterations),
                                   samples=n)
    return results


# ------------------------------------------------------------------------------------------------ the stage
def run_gt_stage(out_dir: Path, quick: bool = False, progress: bool = True, backends=None) -> StageResult:
    """Train the GT network on wine into ``out_dir/gt_wine[_quick]`` and measure it."""
    t0 = time.perf_counter()
    res = StageResult("gt", "growth-transform network on scikit-learn wine")
    p = QUICK if quick else FULL
    torch.set_num_threads(1)      # as the trainer runs it (gt_run_config): the GT tensors are tiny
    run_dir = Path(out_dir) / f"gt_{p['dataset']}{'_quick' if quick else ''}"
    net, split = train_stage_network(p, progress, run_dir)
    test = evaluate(net, split.x_test, split.y_test)
    s = RunSummary(model="gt_network2", task=f"sklearn-{p['dataset']}", metric_name="accuracy",
                   metric=test["accuracy"], per_layer=gt_layer_rows(net, split.x_test),
                   label=f"GT {p['architecture']}", spike_penalty=float(net.cfg.i_psi))
    s.source = str(run_dir / "summary.json")
    if backends is not None:
        backends(res, s, net, split.x_test, split.y_test, deployer=deploy_gt)
        lava = s.backends.get("lava-fixed")
        if lava is not None:
            res.notes.append(f"GT: lava-fixed ran {lava.samples} samples x {net.n_classes} candidate labels = "
                             f"{lava.samples * net.n_classes} network copies, packed side by side into Lava graphs "
                             "of one copy's processes.")
    write_summary(run_dir, s)
    res.summaries.append(s)
    res.notes.append("GT: neurons couple through continuous potentials (Q v), so synaptic ops and energy are "
                     "not estimated; firing rate = spikes of the predicting run / (neurons x iterations).")
    res.seconds = time.perf_counter() - t0
    return res
