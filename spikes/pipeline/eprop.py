"""Stage (b): a recurrent LIF/ALIF network trained online with e-prop on the embedded digits event set.

Input: the digits frames (``spikes.datasets.digits.digits_frames``, T bins of 34x34x2 binary events)
max-pooled 2x2 to 17x17x2 = 578 input channels (keeps the eligibility traces ``(B, N, n_in)`` small
enough for 2 CPU cores), time first ``(T, B, 578)``. Network (``spikes.models.rsnn``): ``n_rec`` recurrent
neurons, half of them ALIF; leaky readout; loss: softmax cross-entropy at every step
(``SequenceCrossEntropy``) plus e-prop's firing-rate regulariser ``c_reg sum_j (f_j - f_target)^2``
(the spike-penalty setting recorded in the summary). Trained by the trainer (``spikes.training``) with the rule
``eprop`` (``spikes.learning.eprop_rule``), symmetric feedback.

Activity per layer: ``rec`` (recurrent neurons: firing rate, ``synops`` = input events x N + recurrent
spikes x (N - 1) + recurrent spikes x K readout synapses, per sample). Counted from the spikes directly.

Deploy (:func:`deploy_rsnn`, the stage's deployer for ``spikes.pipeline.backends.deploy_hook``): the trained
RSNN is captured (``RSNN.to_graph``: e-prop neurons with a recurrent projection, leaky ``Integrator``
readout), lowered, quantised (``spikes.deploy.populations.eprop``), run on ``sim`` (all test samples) and
``lava-fixed`` (the first ``lava_samples``, default all, packed); the readout values are decoded to float units
and classified by the model's own rule (largest mean softmax over all steps). Backend rows, counted on the lowered network as
in ``spikes.pipeline.backends.layer_rows``: ``rec`` (firing rate; synops = input events x N + recurrent
spikes x N, the dense recurrent matrix stores its zero diagonal too) and ``readout`` (firing rate None;
synops = recurrent spikes x K). Their synops sum compares with the torch row's.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from spikes.deploy.network import lower
from spikes.deploy.populations import kind_of
from spikes.deploy.quantize import quantize
from spikes.graph import capture
from spikes.learning.eprop_losses import SequenceCrossEntropy
from spikes.pipeline.activity import raster_dict
from spikes.pipeline.backends import BACKENDS, layer_rows, run_aligned
from spikes.reports.summary import BackendResult, RunSummary, write_summary
from spikes.training import CHECKPOINT_FILE, load_model, train
from spikes.training.config import resolve_config
from spikes.training.data import DataOptions, open_dataset, time_first
from spikes.pipeline.record import StageResult

FULL = {"n_time_bins": 20, "n_rec": 64, "epochs": 2, "batch_size": 32, "lr": 5e-3, "c_reg": 0.1,
        "f_target": 10.0, "train_limit": 0, "test_limit": 0}
QUICK = {**FULL, "n_rec": 32, "epochs": 1, "train_limit": 64, "test_limit": 64, "n_time_bins": 10}


def pooled_sequences(split: str, n_time_bins: int, limit: int = 0):
    """``(x (T, N, 578) float32 0/1, y (N,))``: the digits frames max-pooled 2x2 (``data.pool = 2``), flattened, time
    first: what the stage's RSNN takes."""
    data = open_dataset("digits-events", split, DataOptions(n_time_bins=n_time_bins, pool=2, train_limit=limit,
                                                            test_limit=limit))
    x, y = data.batch(torch.arange(len(data)))
    return time_first(x).flatten(2), y


def measure_rsnn(model, x, y, batch_size: int = 64) -> dict:
    """Accuracy (class of the largest mean softmax over all steps), per-layer rows, rates and raster."""
    n_rec, n_out = model.cfg.n_rec, model.cfg.n_out
    T = x.shape[0]
    errors = 0.0
    spike_sum = torch.zeros(n_rec)
    in_events = rec_spikes = 0.0
    first = None
    with torch.no_grad():
        for i in range(0, x.shape[1], batch_size):
            xb, yb = x[:, i:i + batch_size], y[i:i + batch_size]
            out, z = model(xb)
            errors += float(SequenceCrossEntropy(yb, n_out, T).errors(out).sum())
            spike_sum += z.sum((0, 1))
            in_events += float((xb != 0).sum())
            rec_spikes += float(z.sum())
            if first is None:
                first = z[:, 0].numpy()
    n = x.shape[1]
    rate = float(spike_sum.sum()) / (n * T * n_rec)
    synops = (in_events * n_rec + rec_spikes * (n_rec - 1) + rec_spikes * n_out) / n
    rows = [{"layer": "rec", "firing_rate": rate, "density": rate, "synops": synops, "neurons": n_rec, "steps": T}]
    return {"accuracy": 1.0 - errors / n, "per_layer": rows,
            "neuron_rates": {"rec": (spike_sum / (n * T)).tolist()}, "raster": raster_dict("rec", first)}


def rsnn_decisions(values: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of readout values ``(T, B, K)`` (float units) by the model's rule: largest mean softmax."""
    T, B, K = values.shape
    errors = SequenceCrossEntropy(torch.as_tensor(np.asarray(y)[:B]), K, T, dtype=torch.float64).errors(
        torch.as_tensor(values, dtype=torch.float64))
    return 1.0 - float(errors.mean())


def deploy_rsnn(model, x: np.ndarray, y: np.ndarray, backends=BACKENDS, lava_samples: int | None = None,
                progress: bool = True) -> dict:
    """``{backend: BackendResult}`` of the trained RSNN on the chip backends (module docstring).

    ``x``: time-first test inputs ``(T, N, n_in)``, ``y`` labels ``(N,)``.
    """
    if y is None:
        raise ValueError("deploy_rsnn needs the class labels")
    x = np.asarray(x)
    qnet = quantize(lower(capture(model, tuple(x.shape[2:]))), input_max=max(1.0, float(np.abs(x).max())))
    readout = next(iter(qnet.outputs.values()))
    graded = {name for name, pop in qnet.populations.items() if kind_of(pop).graded}
    results = {}
    for b in tqdm(backends, desc="deploy", leave=False, disable=not progress):
        xb = x if b == "sim" or lava_samples is None else x[:, :lava_samples]
        B = xb.shape[1]
        out = run_aligned(qnet, xb, b)
        spikes = {k: v for k, v in out.items() if k not in graded}
        values = {k: v for k, v in out.items() if k in graded}
        decoded = qnet.populations[readout].decode(values[readout])
        results[b] = BackendResult(metric=rsnn_decisions(decoded, y),
                                   per_layer=layer_rows(qnet, spikes, xb, {}, values), samples=int(B))
    return results


def stage_config(p: dict = FULL, progress: bool = False):
    """The run config of the stage's e-prop training (settings ``p``: ``FULL``, ``QUICK`` or a variant)."""
    return resolve_config(None, {
        "model": {"kind": "rsnn", "n_rec": p["n_rec"], "n_adaptive": p["n_rec"] // 2, "c_reg": p["c_reg"],
                  "f_target": p["f_target"]},
        "rule": {"name": "eprop", "feedback": "symmetric"},
        "data": {"dataset": "digits-events", "n_time_bins": p["n_time_bins"], "pool": 2,
                 "train_limit": p["train_limit"], "test_limit": p["test_limit"]},
        "train": {"epochs": p["epochs"], "batch_size": p["batch_size"], "lr": p["lr"], "optimizer": "adam",
                  "scheduler": "constant", "seed": 0, "checkpoint_every": 0, "threads": 2, "progress": progress}})


def train_stage_network(p: dict = FULL, progress: bool = False, run_dir: Path | None = None):
    """``(model, x_test, y_test)``: the stage's ALIF RSNN trained with e-prop by the trainer (``spikes.training``) in
    ``run_dir`` (default: a temporary folder), test inputs time first ``(T, N, 578)``."""
    cfg = stage_config(p, progress)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(run_dir) if run_dir is not None else Path(tmp)
        train(cfg, folder, resume=True, log=lambda m: None)   # a finished run is reused
        model, _, _ = load_model(folder / CHECKPOINT_FILE)
    xt, yt = pooled_sequences("test", p["n_time_bins"], p["test_limit"])
    return model, xt, yt


def run_eprop_stage(out_dir: Path, quick: bool = False, progress: bool = True, backends=None) -> StageResult:
    """Train the ALIF RSNN with e-prop into ``out_dir/eprop_alif[_quick]`` and measure it."""
    t0 = time.perf_counter()
    res = StageResult("eprop_alif", "ALIF recurrent SNN trained with e-prop on digits events")
    p = QUICK if quick else FULL
    torch.set_num_threads(2)
    run_dir = Path(out_dir) / f"eprop_alif{'_quick' if quick else ''}"
    model, xt, yt = train_stage_network(p, progress, run_dir)
    m = measure_rsnn(model, xt, yt)
    s = RunSummary(model="rsnn_alif_eprop", task="digits-events", metric_name="accuracy", metric=m["accuracy"],
                   per_layer=m["per_layer"], label=f"e-prop ALIF RSNN (c_reg={p['c_reg']:g})",
                   spike_penalty=p["c_reg"], raster=m["raster"], neuron_rates=m["neuron_rates"],
                   source=str(run_dir / "summary.json"))
    if backends is not None:
        backends(res, s, model, xt, yt, deployer=deploy_rsnn)
    write_summary(run_dir, s)
    res.summaries.append(s)
    res.seconds = time.perf_counter() - t0
    return res
