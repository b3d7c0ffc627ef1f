"""Stage (d): a differential growth-transform (GT) network on a scikit-learn data set (wine, no download).

Trained with the local GT rule (:func:`spikes.models.gt_network.fit`); the predicted label is the one whose
run spikes least. Activity per layer (of the predicting run): neurons ``2 * units`` (differential
pairs), steps = GT iterations, firing rate = spikes / (neurons * iterations). ``spike_penalty`` records the
penalty current ``i_psi``. GT neurons couple through their continuous potentials (``Q v``), not spike
events, so synaptic operations per spike are not defined here: ``synops`` is left empty (no energy).

Deployed by :func:`deploy_gt` (``spikes.deploy.gt_network``): the trained network as a graph (features as
12-bit codes, label code and features held constant), lowered and quantised once (fixed-point GT kinds,
``spikes.deploy.populations.gt``), run on ``sim`` and ``lava-fixed`` for every test sample, once per candidate
label (Lava: the (sample, label) rows packed side by side, ``spikes.deploy.pack``, the coupling ``Q``
block-diagonal), with the same fewest-spikes decision and per-layer rows as the torch model.
"""
from __future__ import annotations

import time
from pathlib import Path

from spikes.pipeline.record import StageResult

FULL = {"dataset": "wine", "architecture": "network2", "eta": (1e-4, 1e-3), "epochs": 8, "iterations": 100}
QUICK = {**FULL, "epochs": 1, "iterations": 30}
INPUT_BITS = 12        # features enter as the codes round(4096 x): the resolution of the GT input path;
                       # 8 bits flipped one borderline wine test sample in floating point


def gt_layer_rows(net, x) -> list[dict]:
    """Per-layer rows of the run that predicts each sample of ``x`` (its fewest-spikes label)."""
    import torch

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


def deploy_gt(net, x, y, backends=("sim", "lava-fixed"), lava_samples: int | None = None,
              progress: bool = True) -> dict:
    """``{backend: BackendResult}`` of the trained ``GTNetwork`` on features ``x`` (B, D) with labels ``y``.

    Converted (``to_graph``), lowered and quantised once; ``sim``, ``sim-float`` and ``torch`` run every sample,
    ``lava-fixed`` and ``lava-float`` the first ``lava_samples`` (None: all). Metric: accuracy of the
    fewest-spikes label; rows per layer of the predicting run (firing rate = spikes / (neurons x iterations)).
    """
    import numpy as np
    from tqdm.auto import tqdm

    from spikes.deploy.gt_network import layer_rows, predict, spike_counts, to_graph
    from spikes.deploy.network import lower
    from spikes.deploy.quantize import quantize
    from spikes.reports.summary import BackendResult

    x = np.asarray(x, dtype=np.float64)
    graph = to_graph(net, INPUT_BITS)
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
        metric = None if y is None else float((predict(counts) == np.asarray(y)[:n]).mean())
        results[b] = BackendResult(metric=metric, per_layer=layer_rows(net, graph, counts), samples=n)
    return results


def stage_config(p: dict = FULL, progress: bool = False):
    """The run config of the stage's GT training: local rule, batches of 8, the best validation epoch kept
    (early stop after 6 epochs without improvement)."""
    from spikes.training.config import resolve_config

    return resolve_config(None, {
        "model": {"kind": "gt_network", "architecture": p["architecture"], "iterations": p["iterations"],
                  "eta1": p["eta"][0], "eta2": p["eta"][1]},
        "rule": {"name": "gt"}, "data": {"dataset": p["dataset"]},
        "train": {"epochs": p["epochs"], "batch_size": 8, "keep_best": True, "patience": 6, "seed": 0,
                  "checkpoint_every": 0, "threads": 1, "progress": progress}})


def train_stage_network(p: dict = FULL, progress: bool = False, run_dir: Path | None = None):
    """``(net, split)``: the stage's GT network trained by the trainer (``spikes.training``, rule ``gt``) in
    ``run_dir`` (default: a temporary folder), and the data split (``spikes.datasets.tabular``)."""
    import tempfile

    from spikes.datasets.tabular import load_split
    from spikes.training import CHECKPOINT_FILE, load_model, train

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(run_dir) if run_dir is not None else Path(tmp)
        train(stage_config(p, progress), folder, resume=(folder / CHECKPOINT_FILE).exists(), log=lambda m: None)
        net, _, _ = load_model(folder / CHECKPOINT_FILE)
    return net, load_split(p["dataset"], seed=0)


def run_gt_stage(out_dir: Path, quick: bool = False, progress: bool = True, backends=None) -> StageResult:
    """Train the GT network on wine into ``out_dir/gt_wine[_quick]`` and measure it."""
    import torch

    from spikes.models.gt_network import evaluate
    from spikes.reports.summary import RunSummary, write_summary

    t0 = time.perf_counter()
    res = StageResult("gt", "growth-transform network on scikit-learn wine")
    p = QUICK if quick else FULL
    # one thread: the GT tensors are tiny (<= 192 x 34), and a second intra-op thread made an epoch 25x
    # slower on a loaded 2-core machine (0.8 s vs 19 s), for the same weights
    torch.set_num_threads(1)
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
