"""Stage (d): a differential growth-transform (GT) network on a scikit-learn data set (wine, no download).

Trained with the local GT rule (:func:`spikes.models.gt_network.fit`); the predicted label is the one whose
run spikes least. Activity per layer (of the predicting run): neurons ``2 * units`` (differential
pairs), steps = GT iterations, firing rate = spikes / (neurons * iterations). ``spike_penalty`` records the
penalty current ``i_psi``. GT neurons couple through their continuous potentials (``Q v``), not spike
events, so synaptic operations per spike are not defined here: ``synops`` is left empty (no energy).
"""
from __future__ import annotations

import time
from pathlib import Path

from spikes.pipeline.record import StageResult

FULL = {"dataset": "wine", "architecture": "network2", "eta": (1e-4, 1e-3), "epochs": 8, "iterations": 100}
QUICK = {**FULL, "epochs": 1, "iterations": 30}


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


def run_gt_stage(out_dir: Path, quick: bool = False, progress: bool = True, backends=None) -> StageResult:
    """Train the GT network on wine into ``out_dir/gt_wine[_quick]`` and measure it."""
    import torch

    from spikes.models.gt_network import GTNetwork, GTNetworkConfig, evaluate, fit, load_split
    from spikes.reports.summary import RunSummary, write_summary

    t0 = time.perf_counter()
    res = StageResult("gt", "growth-transform network on scikit-learn wine")
    p = QUICK if quick else FULL
    torch.set_num_threads(2)
    torch.manual_seed(0)
    split = load_split(p["dataset"], seed=0)
    cfg = GTNetworkConfig(architecture=p["architecture"], eta=p["eta"], iterations=p["iterations"])
    net = GTNetwork(split.x_train.shape[1], split.n_classes, cfg, seed=0)
    fit(net, split, p["epochs"], seed=0, progress=progress)
    test = evaluate(net, split.x_test, split.y_test)
    s = RunSummary(model="gt_network2", task=f"sklearn-{p['dataset']}", metric_name="accuracy",
                   metric=test["accuracy"], per_layer=gt_layer_rows(net, split.x_test),
                   label=f"GT {p['architecture']}", spike_penalty=float(cfg.i_psi))
    run_dir = Path(out_dir) / f"gt_{p['dataset']}{'_quick' if quick else ''}"
    run_dir.mkdir(parents=True, exist_ok=True)
    s.source = str(run_dir / "summary.json")
    if backends is not None:
        backends(res, s, net, split.x_test, split.y_test)
    write_summary(run_dir, s)
    res.summaries.append(s)
    res.notes.append("GT: neurons couple through continuous potentials (Q v), so synaptic ops and energy are "
                     "not estimated; firing rate = spikes of the predicting run / (neurons x iterations).")
    res.seconds = time.perf_counter() - t0
    return res
