"""Stage (b): a recurrent LIF/ALIF network trained online with e-prop on the embedded digits event set.

Input: the digits frames (``spikes.datasets.digits.digits_frames``, T bins of 34x34x2 binary events)
max-pooled 2x2 to 17x17x2 = 578 input channels (keeps the eligibility traces ``(B, N, n_in)`` small
enough for 2 CPU cores), time first ``(T, B, 578)``. Network (``spikes.models.rsnn``): ``n_rec`` recurrent
neurons, half of them ALIF; leaky readout; loss: softmax cross-entropy at every step
(``SequenceCrossEntropy``) plus e-prop's firing-rate regulariser ``c_reg sum_j (f_j - f_target)^2``
(the spike-penalty setting recorded in the summary). Learning rule: ``spikes.learning.eprop_train.Trainer``
with symmetric feedback.

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

import time
from pathlib import Path

import numpy as np

from spikes.pipeline.backends import BACKENDS
from spikes.pipeline.record import StageResult

FULL = {"n_time_bins": 20, "n_rec": 64, "epochs": 2, "batch_size": 32, "lr": 5e-3, "c_reg": 0.1,
        "f_target": 10.0, "train_limit": 0, "test_limit": 0}
QUICK = {**FULL, "n_rec": 32, "epochs": 1, "train_limit": 64, "test_limit": 64, "n_time_bins": 10}


def pooled_sequences(split: str, n_time_bins: int, limit: int = 0):
    """``(x (T, N, 578) float32 0/1, y (N,))``: digits frames max-pooled 2x2, flattened, time first."""
    import torch.nn.functional as F

    from spikes.datasets.digits import digits_frames

    x, y = digits_frames(split, n_time_bins=n_time_bins, seed=0)
    if limit:
        x, y = x[:limit], y[:limit]
    n, t = x.shape[:2]
    x = F.max_pool2d(x.reshape(n * t, *x.shape[2:]), 2)
    return x.reshape(n, t, -1).transpose(0, 1).contiguous(), y


def measure_rsnn(model, x, y, batch_size: int = 64) -> dict:
    """Accuracy (class of the largest mean softmax over all steps), per-layer rows, rates and raster."""
    import torch

    from spikes.learning.eprop_losses import SequenceCrossEntropy
    from spikes.pipeline.activity import raster_dict

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
    import torch

    from spikes.learning.eprop_losses import SequenceCrossEntropy

    T, B, K = values.shape
    errors = SequenceCrossEntropy(torch.as_tensor(np.asarray(y)[:B]), K, T, dtype=torch.float64).errors(
        torch.as_tensor(values, dtype=torch.float64))
    return 1.0 - float(errors.mean())


def deploy_rsnn(model, x: np.ndarray, y: np.ndarray, backends=BACKENDS, lava_samples: int | None = None,
                progress: bool = True) -> dict:
    """``{backend: BackendResult}`` of the trained RSNN on the chip backends (module docstring).

    ``x``: time-first test inputs ``(T, N, n_in)``, ``y`` labels ``(N,)``.
    """
    from tqdm.auto import tqdm

    from spikes.graph import capture
    from spikes.deploy.network import lower
    from spikes.deploy.populations import kind_of
    from spikes.deploy.quantize import quantize
    from spikes.pipeline.backends import layer_rows, run_aligned
    from spikes.reports.summary import BackendResult

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


def train_stage_network(p: dict = FULL, progress: bool = False):
    """``(model, x_test, y_test)``: the stage's ALIF RSNN trained with e-prop as the stage does (settings ``p``,
    ``FULL`` or ``QUICK`` or a variant), seeded, on the torch threads the caller set."""
    import torch
    from tqdm.auto import tqdm

    from spikes.learning.eprop_losses import SequenceCrossEntropy
    from spikes.learning.eprop_train import Trainer
    from spikes.models.rsnn import RSNN, RSNNConfig

    torch.manual_seed(0)
    x, y = pooled_sequences("train", p["n_time_bins"], p["train_limit"])
    xt, yt = pooled_sequences("test", p["n_time_bins"], p["test_limit"])
    cfg = RSNNConfig(n_in=x.shape[2], n_rec=p["n_rec"], n_out=10, n_adaptive=p["n_rec"] // 2, dt=1.0,
                     tau_m=20.0, tau_a=200.0, tau_out=20.0, v_th=0.6, n_ref=2)
    model = RSNN(cfg, seed=0)
    trainer = Trainer(model, "eprop-symmetric", lr=p["lr"], c_reg=p["c_reg"], f_target=p["f_target"], seed=0)
    gen = torch.Generator().manual_seed(0)
    n, bs = x.shape[1], p["batch_size"]
    steps = p["epochs"] * ((n + bs - 1) // bs)
    with tqdm(total=steps, desc="e-prop ALIF", disable=not progress, leave=False) as bar:
        for _ in range(p["epochs"]):
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, bs):
                idx = order[i:i + bs]
                loss, _, rate = trainer.train_step(x[:, idx], SequenceCrossEntropy(y[idx], 10, x.shape[0]))
                bar.set_postfix(loss=f"{loss:.3f}", rate=f"{rate:.3f}")
                bar.update()
    return model, xt, yt


def run_eprop_stage(out_dir: Path, quick: bool = False, progress: bool = True, backends=None) -> StageResult:
    """Train the ALIF RSNN with e-prop into ``out_dir/eprop_alif[_quick]`` and measure it."""
    import torch

    from spikes.io import atomic_torch_save
    from spikes.reports.summary import RunSummary, write_summary

    t0 = time.perf_counter()
    res = StageResult("eprop_alif", "ALIF recurrent SNN trained with e-prop on digits events")
    p = QUICK if quick else FULL
    torch.set_num_threads(2)
    model, xt, yt = train_stage_network(p, progress)
    cfg = model.cfg
    m = measure_rsnn(model, xt, yt)
    run_dir = Path(out_dir) / f"eprop_alif{'_quick' if quick else ''}"
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(run_dir / "checkpoint.pt", {"config": cfg, "state_dict": model.state_dict()})
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
