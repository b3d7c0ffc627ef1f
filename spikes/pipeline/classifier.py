"""Stage (a): conv SNN classifier on the embedded digits event set, trained with surrogate gradients.

Training is :func:`spikes.training.train` (run directory with config.toml, checkpoint.pt, metrics.jsonl);
the trained model is then measured on the test split: accuracy, SpikeProbe per-layer rows, per-neuron
rates and a raster. The run directory's ``summary.json`` keeps the training loop's keys and adds those of
the comparison schema (:mod:`spikes.reports.summary`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from spikes.io import atomic_write_text
from spikes.metrics import SpikeProbe
from spikes.pipeline.activity import NeuronRecorder
from spikes.reports.summary import RunSummary
from spikes.training import CHECKPOINT_FILE, SUMMARY_FILE, load_model
from spikes.training.config import resolve_config
from spikes.training.data import open_dataset, time_first
from spikes.training.loop import train
from spikes.pipeline.record import StageResult

FULL = {"model": "conv_snn", "neuron": "plif", "width": 8, "readout": "count", "gain": 8.0, "dataset": "digits-events",
        "n_time_bins": 8, "epochs": 10, "batch_size": 32, "lr": 3e-3, "optimizer": "adam", "scheduler": "cosine",
        "seed": 0, "checkpoint_every": 0, "threads": 2}
QUICK = {**FULL, "epochs": 1, "train_limit": 256, "test_limit": 128}


def measure_classifier(model, x, y, batch_size: int = 64) -> dict:
    """Accuracy, per-layer rows, per-neuron rates and raster of ``model`` on ``x (N, T, C, H, W)``, ``y``."""
    model.eval()
    correct = 0
    with torch.no_grad(), SpikeProbe(model) as probe, NeuronRecorder(model) as rec:
        for i in range(0, len(x), batch_size):
            logits = model(time_first(x[i:i + batch_size]))
            correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    return {"accuracy": correct / max(len(x), 1), "per_layer": probe.summary_rows(),
            "neuron_rates": rec.neuron_rates(), "raster": rec.raster()}


def run_classifier_stage(out_dir: Path, quick: bool = False, progress: bool = True, backends=None) -> StageResult:
    """Train (or reuse) the conv SNN in ``out_dir/conv_snn[_quick]`` and measure it; deploy if possible."""
    t0 = time.perf_counter()
    res = StageResult("conv_snn", "conv SNN (surrogate gradients) on digits events")
    cfg = resolve_config(None, None, {**(QUICK if quick else FULL), "progress": progress})
    run_dir = Path(out_dir) / ("conv_snn_quick" if quick else "conv_snn")
    loop_summary = train(cfg, run_dir, resume=True, log=lambda m: None)   # a finished run is reused
    test = open_dataset(cfg.dataset, "test", cfg.data, cfg.data_root, cfg.train.seed)
    x, y = test.batch(torch.arange(len(test)))
    model, _, _ = load_model(run_dir / CHECKPOINT_FILE)
    torch.set_num_threads(cfg.train.threads)
    m = measure_classifier(model, x, y)
    summary = RunSummary(model="conv_snn", task="digits-events", metric_name="accuracy", metric=m["accuracy"],
                         per_layer=m["per_layer"], label="conv SNN (surrogate grad.)", spike_penalty=0.0,
                         raster=m["raster"], neuron_rates=m["neuron_rates"], source=str(run_dir / SUMMARY_FILE))
    if backends is not None:
        backends(res, summary, model, x.transpose(0, 1), y)
    atomic_write_text(run_dir / SUMMARY_FILE, json.dumps({**loop_summary, **summary.to_dict()}, indent=1) + "\n")
    res.summaries.append(summary)
    res.seconds = time.perf_counter() - t0
    return res
