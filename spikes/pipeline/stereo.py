"""Stage (c): a small StereoSpike (spiking U-Net, one-step IF units) on the embedded stereo depth set.

One model per spike-penalty weight ``beta`` (``spikes.models.stereospike`` trains and evaluates); task
metric: mean depth error in metres (lower is better). Activity: every spiking unit's output density
(binary spikes, one step per sample: firing rate = density, neurons = C*H*W) and the conv layers'
synaptic operations per sample from :class:`spikes.metrics.SpikeProbe`.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from spikes.pipeline.record import StageResult

FULL = {"base": 8, "levels": 3, "n_res": 1, "epochs": 6, "batch_size": 4, "lr": 2e-3}
QUICK = {**FULL, "base": 4, "levels": 2, "epochs": 1}
BETAS_FULL, BETAS_QUICK = (0.0, 1.0), (0.0,)


def measure_stereo(model, data, batch_size: int = 8) -> dict:
    """Per-layer rows (synapses from SpikeProbe, spiking units from the model's activations) on ``data``."""
    import torch

    from spikes.metrics import SpikeProbe
    from spikes.pipeline.activity import raster_dict

    model.eval()
    spikes: dict[str, float] = {}
    numel: dict[str, int] = {}
    first = None
    n = 0
    with torch.no_grad(), SpikeProbe(model, batch_dim=0) as probe:
        for x, _ in data.batches(batch_size):
            out = model(x)
            n += x.shape[0]
            for name, s in out.activations.items():
                spikes[name] = spikes.get(name, 0.0) + float((s != 0).sum())
                numel[name] = numel.get(name, 0) + s.numel()
            if first is None and out.activations:
                name = next(iter(out.activations))
                first = (name, out.activations[name][0].reshape(1, -1).numpy())
    rows = [{"layer": r["layer"], "firing_rate": None, "density": r["density"], "synops": r["synops_per_sample"]}
            for r in probe.table() if r["role"] == "synapse"]
    rows += [{"layer": k, "firing_rate": spikes[k] / numel[k], "density": spikes[k] / numel[k], "synops": None,
              "neurons": numel[k] // n, "steps": 1} for k in spikes]
    raster = raster_dict(first[0], first[1]) if first else None
    return {"per_layer": rows, "raster": raster}


def run_stereo_stage(out_dir: Path, quick: bool = False, progress: bool = True, backends=None) -> StageResult:
    """Train one StereoSpike per beta in ``out_dir/stereospike_beta*``, measure each; deploy if possible."""
    import torch

    from spikes.models.stereospike.data import open_split
    from spikes.models.stereospike.report import train_and_evaluate
    from spikes.models.stereospike.train import StereoConfig, load_checkpoint
    from spikes.reports.summary import RunSummary, write_summary

    t0 = time.perf_counter()
    res = StageResult("stereospike", "StereoSpike (spiking U-Net) on the embedded stereo depth set")
    torch.set_num_threads(2)
    train_data, test_data = open_split("embedded", "train"), open_split("embedded", "test")
    base = StereoConfig(model="snn", **(QUICK if quick else FULL))
    for beta in (BETAS_QUICK if quick else BETAS_FULL):
        cfg = replace(base, beta=float(beta))
        run_dir = Path(out_dir) / f"stereospike{'_quick' if quick else ''}_beta{beta:g}"
        result = train_and_evaluate(cfg, train_data, test_data, run_dir, progress=progress)
        model, _, _ = load_checkpoint(run_dir / "checkpoint.pt")
        m = measure_stereo(model, test_data)
        s = RunSummary(model="stereospike", task="stereo-depth (embedded)", metric_name="mean_depth_error_m",
                       metric=float(result["test"]["mde"]), higher_is_better=False, per_layer=m["per_layer"],
                       label=f"StereoSpike beta={beta:g}", spike_penalty=float(beta), raster=m["raster"],
                       source=str(run_dir / "summary.json"))
        if backends is not None:
            backends(res, s, model, test_data.batch([0])[0][None], None)   # one frame = one time step
        write_summary(run_dir, s)
        res.summaries.append(s)
    res.seconds = time.perf_counter() - t0
    return res
