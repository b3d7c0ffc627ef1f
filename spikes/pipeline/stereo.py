"""Stage (c): a small StereoSpike (spiking U-Net, one-step IF units) on the embedded stereo depth set.

One model per spike-penalty weight ``beta``, trained by the one trainer in its own run directory
(:func:`spikes.pipeline.stereo_report.train_and_evaluate`: model ``stereospike``, data ``stereo-embedded``, the
step schedule; a finished run of the same config is reused); task metric: mean depth error in metres (lower is
better). The run directory's ``summary.json`` keeps the trainer's keys and adds those of the comparison schema
(:mod:`spikes.reports.summary`); ``spikes export`` / ``spikes run`` read its ``checkpoint.pt``. Activity
(:func:`spikes.pipeline.stereo_report.measure_stereo`): every spiking unit's output density (binary spikes, one
step per sample: firing rate = density, neurons = C*H*W) and the conv layers' synaptic operations per sample from
:class:`spikes.metrics.SpikeProbe`.

Deployment (:func:`deploy_stereo`, the stage's deployer for ``spikes.pipeline.backends.deploy_hook``): the
trained model is captured (``StereoSpike.to_graph``), lowered and quantised once (``input_max`` = the
largest event count in the data); a sample is one frame followed by zero steps up to the readout's
latency ``L`` (Lava pipelines the U-Net, one step per synapse process). Each population answers at its
own latency step (``align=True``), the depth is the integrator's value at step ``L`` (decoded to metres)
and the MDE is the model's own pooled metric (``abs_error_sum`` over the valid pixels). Rows, one per
population named after the torch unit (``bottom_sn``, ...; the readout ``depth`` has synops only):
``firing_rate`` = density at its one active step (``steps`` = 1), ``synops`` = synaptic events into the
population per sample on the lowered network, ``sum_j events_j fan_out_j`` over every incoming projection
(``spikes.pipeline.backends.fan_out``; an input pixel with a nonzero count is one graded event).
``sim`` runs every test frame, ``lava-fixed`` the first ``lava_samples`` (default ``LAVA_FRAMES``): packed
(``spikes.deploy.pack``), a frame still costs Lava about 4 s (its CPU ``Conv`` convolves every channel pair
with scipy at each of the ``1 + L`` steps, and the decoder's upsample + conv chains are about 35 million
stored synapses per frame), so the demo caps the frames by default to keep its run time.
"""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from spikes.deploy.backends import TRACES, run as run_backend
from spikes.deploy.network import lower
from spikes.deploy.populations import kind_of as population_kind
from spikes.deploy.quantize import format_report, quantize
from spikes.graph import capture
from spikes.io import atomic_write_json, atomic_write_text
from spikes.models.stereospike.metrics import abs_error_sum
from spikes.pipeline.backends import BACKENDS, fan_out
from spikes.pipeline.record import StageResult
from spikes.pipeline.stereo_report import open_splits, stereo_config, train_and_evaluate, variant
from spikes.reports import mean_rate
from spikes.reports.summary import BackendResult, RunSummary
from spikes.training.checkpoint import load_model
from spikes.training.loop import CHECKPOINT_FILE, SUMMARY_FILE

# [model] and [train] keys of the stage's runs (data: the embedded stereo set)
FULL = {"model": {"base": 8, "levels": 3, "n_res": 1}, "train": {"epochs": 6, "batch_size": 4, "lr": 2e-3, "threads": 2}}
QUICK = {"model": {**FULL["model"], "base": 4, "levels": 2}, "train": {**FULL["train"], "epochs": 1}}
DATA_OPTIONS: dict = {}          # more [data] keys (train_limit, test_limit, cache_dir); the demo uses whole splits
BETAS_FULL, BETAS_QUICK = (0.0, 1.0), (0.0,)
LAVA_FRAMES = 10                 # lava-fixed frames per model (about 4 s of Lava each, packed)


def frame_outputs(model, x: np.ndarray, backend: str) -> dict[str, np.ndarray]:
    """Each population's output for one-frame samples ``x (1, N, C, H, W)`` on ``backend``: spikes (uint8)
    or, for graded populations, values (fixed point: integers), ``(N, *shape)``.

    ``model``: the ``Graph`` for ``torch``, the lowered ``Network`` for the float backends, the ``QNetwork``
    for ``sim``/``lava-fixed``. Lava timing: the frame, then ``L`` zero steps; each population is read at its
    latency (``align=True``)."""
    if x.ndim < 3 or x.shape[0] != 1:
        raise ValueError(f"frame_outputs: x must be one frame per sample (1, N, ...), got {x.shape}")
    if backend != "torch":
        lat = max(p.latency for p in model.populations.values())
        x = np.concatenate([x, np.zeros((lat, *x.shape[1:]), dtype=x.dtype)])
    out = run_backend(model, x, backend=backend, align=True, states=False)
    return {k: next(v[key][0] for key in TRACES if key in v) for k, v in out.items() if not k.startswith("_")}


def stereo_rows(net, outputs: dict[str, np.ndarray], x: np.ndarray) -> list[dict]:
    """Per-population rows (see the module docstring) of one backend run on frames ``x (1, N, C, H, W)``."""
    n = x.shape[1]
    events = {name: (x[0] != 0).reshape(n, -1).sum(0).astype(np.float64) for name in net.inputs}
    rows = []
    for pop in net.order():
        o = outputs[pop].reshape(n, -1)
        graded = population_kind(net.populations[pop]).graded
        if not graded:
            events[pop] = o.sum(0).astype(np.float64)
        syn = sum(float(events[p.src] @ fan_out(p)) for p in net.incoming(pop)) / n
        rate = None if graded else float(o.mean())
        rows.append({"layer": pop, "firing_rate": rate, "density": rate, "synops": syn, "neurons": int(o.shape[1]),
                     "steps": 1})
    return rows


def depth_of(net, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The readout's depth map (N, 1, H, W) in metres from a lowered (float) or quantised (integer values,
    decoded with the integrator's scale) network's outputs."""
    readout = next(iter(net.outputs.values()))
    pop = net.populations[readout]
    values = outputs[readout]
    return pop.decode(values) if hasattr(pop, "decode") else np.asarray(values, dtype=np.float64)


def deploy_stereo(model, x: np.ndarray, y: np.ndarray, backends=BACKENDS,
                  lava_samples: int | None = None,
                  progress: bool = True, input_max: float | None = None, report: dict | None = None) -> dict:
    """Deploy a trained StereoSpike and measure it on each backend: ``{backend: BackendResult}``.

    ``x``: ``(1, N, 4, H, W)`` event counts, one frame per sample; ``y``: ``(N, H, W)`` depth, NaN invalid.
    ``input_max``: the largest input count the quantiser provisions for (default: ``x.max()``).
    ``report`` (a dict) receives the quantisation report, per-frame absolute-error sums and pixel counts
    (``frame_errors``: backend -> (N, 2), torch included), the fraction of spikes equal to torch's per
    population (``agreement``) and timings (``seconds``)."""
    t0 = time.perf_counter()
    x = np.asarray(x, dtype=np.float64)
    if y is None or np.shape(y)[0] != x.shape[1]:
        raise ValueError(f"deploy_stereo: needs the depth maps y (N, H, W) of the {x.shape[1]} frames")
    graph = capture(model, tuple(x.shape[2:]))
    net = lower(graph)
    qnet = quantize(net, input_max=float(x.max() if input_max is None else input_max))
    if all(b in ("sim", "lava-fixed") for b in backends):
        net = None   # the float matrices are not needed: a smaller process forks faster for Lava
    info = report if report is not None else {}
    info.update(quantization=qnet.report, seconds={"prepare": time.perf_counter() - t0}, agreement={})
    gt = torch.as_tensor(np.asarray(y, dtype=np.float32))

    def per_frame(depth) -> np.ndarray:
        return np.array([abs_error_sum(torch.as_tensor(depth[i:i + 1]), gt[i:i + 1]) for i in range(len(depth))])

    model.eval()
    with torch.no_grad():
        ref = model(torch.as_tensor(x[0], dtype=torch.float32))
    info["frame_errors"] = {"torch": per_frame(ref.depth.numpy())}
    results = {}
    cap = info["lava_frames"] = LAVA_FRAMES if lava_samples is None else lava_samples   # None: the demo's cap
    for b in tqdm(backends, desc="deploy", leave=False, disable=not progress):
        t = time.perf_counter()
        frames = x if b.startswith("sim") or b == "torch" else x[:, :max(1, cap)]
        n = frames.shape[1]
        target = qnet if b in ("sim", "lava-fixed") else (graph if b == "torch" else net)
        out = frame_outputs(target, frames, b)
        errors = info["frame_errors"][b] = per_frame(depth_of(qnet if target is qnet else net, out))
        if errors[:, 1].sum() == 0:
            raise ValueError("deploy_stereo: the ground truth has no valid (non-NaN) pixel")
        info["agreement"][b] = {k: float((out[k] == ref.activations[k][:n].numpy()).mean())
                                for k in ref.activations if k in out}
        rows = stereo_rows(qnet, out, frames)
        reference = None
        if n < x.shape[1]:      # fewer frames than torch ran: torch's rates on the same frames, to compare with
            reference = {r["layer"]: float(ref.activations[r["layer"]][:n].float().mean()) for r in rows
                         if r["firing_rate"] is not None and r["layer"] in ref.activations}
        results[b] = BackendResult(metric=mde(errors), per_layer=rows,
                                   samples=int(n), reference_rates=reference)
        info["seconds"][b] = time.perf_counter() - t
    return results


def _same_frames_rates(result) -> str:
    """' Mean firing rate on those frames: torch X, lava-fixed Y.' from a backend's ``reference_rates``."""
    ref = result.reference_rates or {}
    rows = [r for r in result.per_layer if r.get("firing_rate") is not None and r["layer"] in ref]
    if not rows:
        return ""
    torch_rows = [{**r, "firing_rate": ref[r["layer"]]} for r in rows]
    return (f" Mean firing rate on those frames: torch {mean_rate(torch_rows):.4g}, lava-fixed {mean_rate(rows):.4g} "
            "(the table's torch row is over all frames).")


def mde(errors: np.ndarray, n: int | None = None) -> float:
    """Pooled MDE of the first ``n`` frames' ``(error sum, valid pixels)`` rows."""
    e = np.asarray(errors)[:n]
    return float(e[:, 0].sum() / e[:, 1].sum())


def write_deploy_report(path: Path, summary, info: dict, seconds: float) -> str:
    """Write (atomically) and return the deploy note of one model: MDE per backend on all frames and on the
    Lava frames, spike agreement with torch, timings and the per-layer quantisation report."""
    errs = info["frame_errors"]
    k = min(len(e) for e in errs.values())
    lines = [f"# Deploy of {summary.label}", "",
             f"MDE (m) over all {len(errs['torch'])} test frames: " + ", ".join(
                 f"{b} {mde(e):.4f}" for b, e in errs.items() if len(e) == len(errs["torch"])),
             f"MDE (m) over the first {k} frames (those lava-fixed ran): " + ", ".join(
                 f"{b} {mde(e, k):.4f}" for b, e in errs.items()), "",
             "Spikes equal to torch's (fraction, per population): "]
    for b, agree in info["agreement"].items():
        lines.append(f"- {b}: " + " ".join(f"{p}={a:.4f}" for p, a in agree.items()))
    lines += ["", f"Deploy time {seconds:.1f} s: " + ", ".join(f"{k} {v:.1f} s" for k, v in info["seconds"].items()),
              "", "Quantisation (per layer):", "", "```", format_report(info["quantization"]), "```", ""]
    text = "\n".join(lines)
    atomic_write_text(Path(path), text)
    return text


def run_stereo_stage(out_dir: Path, quick: bool = False, progress: bool = True, backends=None) -> StageResult:
    """Train (or reuse) one StereoSpike per beta in ``out_dir/stereospike[_quick]_beta*``, measure each; deploy if
    possible."""
    t0 = time.perf_counter()
    res = StageResult("stereospike", "StereoSpike (spiking U-Net) on the embedded stereo depth set")
    spec = QUICK if quick else FULL
    base = stereo_config(spec["model"], {**spec["train"], "progress": progress}, "embedded", DATA_OPTIONS,
                         source="demo stage")
    train_set, test_set = open_splits(base)
    x_test, d_test = test_set.batch(torch.arange(len(test_set)))
    input_max = max(float(train_set.batch(torch.arange(len(train_set)))[0].max()), float(x_test.max()))
    for beta in (BETAS_QUICK if quick else BETAS_FULL):
        config = variant(base, train={"spike_penalty": float(beta)})
        run_dir = Path(out_dir) / f"stereospike{'_quick' if quick else ''}_beta{beta:g}"
        summary = train_and_evaluate(config, run_dir, train_set, test_set, log=lambda m: None)
        model = load_model(run_dir / CHECKPOINT_FILE)[0]
        torch.set_num_threads(config.train.threads)
        s = RunSummary(model="stereospike", task="stereo-depth (embedded)", metric_name="mean_depth_error_m",
                       metric=float(summary["test"]["mde"]), higher_is_better=False, per_layer=summary["per_layer"],
                       label=summary["label"], spike_penalty=float(beta), raster=summary.get("raster"),
                       source=str(run_dir / SUMMARY_FILE))
        if backends is not None:   # one frame = one time step, then zeros until the readout answers
            info: dict = {}
            t_deploy = time.perf_counter()
            backends(res, s, model, x_test[None], d_test,
                     deployer=partial(deploy_stereo, input_max=input_max, report=info))
            if s.backends:
                took = time.perf_counter() - t_deploy
                write_deploy_report(run_dir / "deploy.md", s, info, took)
                errs, k = info["frame_errors"], min(len(e) for e in info["frame_errors"].values())
                res.notes.append(f"{s.label}: deployed in {took:.0f} s; MDE on the first {k} test frames (run "
                                 "by every backend): " + ", ".join(f"{b} {mde(e, k):.4f} m" for b, e in errs.items())
                                 + "; worst per-layer spike agreement with torch: " + ", ".join(
                                     f"{b} {min(a.values()):.4f}" for b, a in info["agreement"].items())
                                 + f" (details in {run_dir.name}/deploy.md)")
                lava = s.backends.get("lava-fixed")
                if lava is not None and lava.samples < len(x_test):
                    took_lava = info["seconds"].get("lava-fixed", 0.0)
                    why = "LAVA_FRAMES, the default" if info["lava_frames"] == LAVA_FRAMES else "the lava_samples asked for"
                    res.notes.append(f"{s.label}: lava-fixed is capped at {lava.samples} of {len(x_test)} test frames "
                                     f"({why}): it took {took_lava:.0f} s for them, packed; Lava's CPU Conv "
                                     "runs scipy per channel pair at every step and the decoder stores ~35M "
                                     "synapses per frame, so the whole test set would add minutes to the demo."
                                     + _same_frames_rates(lava))
        atomic_write_json(run_dir / SUMMARY_FILE, {**summary, **s.to_dict()}, indent=1)
        res.summaries.append(s)
    res.seconds = time.perf_counter() - t0
    return res
