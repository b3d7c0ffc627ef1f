"""Interference between tasks learned in sequence: train task A, then task B from A's weights, through the one
trainer, and measure what B's learning did to A (``spikes analyse interference``).

The tasks are the signed working-memory pair of :mod:`spikes.datasets.tasks.memory` (data set ``memory``): A and B
use their own input channel and output, so they are orthogonal in input and output; A's ``input_drive`` (the
cue's amplitude through its response window) sets how much A relies on its input rather than on the
network's own dynamics, and is swept. B is a memory (``drive_b = 0`` by default). Rate networks train on signed
targets with the other task's output held at 0 (``model.loss = mse_silent``: B cannot answer with A's memory and
readout) and learn only their recurrent weights (``model.learn = recurrent``: input and readout vectors stay random,
as in the low-rank RNN studies of learning), so whatever B changes in A's behaviour it changes through the shared
dynamics; each output reads along its own task's input vector (``model.readout = input``), so "input-driven" means
what it says: A's cue held on answers A by itself, and A without its cue must hold a fixed point along that vector
(with a random readout even a fully input-driven A needs the recurrent weights to route its input to its output, and
forgetting no longer tracks the drive). ``overrides`` can set each back. Each (drive, seed) pair is two
``spikes train`` runs: ``A/`` on task A, ``B/`` on task B with ``train.init_from = A/checkpoint.pt``; while B
learns, a callback keeps ``snapshots`` copies of the weights.

Per pair (:func:`analyse_pair`, measures in :mod:`spikes.reports.interference`):

- forgetting ``(L_A(after B) - L_A(after A)) / (L_A(silent) - L_A(after A))``: the share of what A's training
  gained on A's test loss that B's training lost, measured against a silent readout (0: nothing forgotten; 1: A is
  answered no better than by outputs of 0). A is scored on its own readout: other tasks' outputs are left out
  (signed targets) or their logits masked (classifiers: A is a choice between its own two classes), so the class
  competition of a shared softmax does not count as forgetting. A's accuracy after A and after B likewise;
- the update cosines per block (input, recurrent, readout) and the update norms;
- input-driven vs recurrent drive on A's response window (A's network on A's trials) and on B's (B's on B's);
- principal angles between A's activity subspace (A's network, A's trials) and B's (B's network, B's trials),
  and between A's activity before and after B;
- rate networks (:class:`spikes.models.rate_rnn.RateRNN`): the fixed points of A's dynamics (the input of A's
  last response step, per cue sign; the finder started from states on A's trajectories) at every snapshot of B's learning; A's
  fixed point of a sign is the one nearest the mean final state of its trials; its rotation is the angle between
  that point before B and at the snapshot (mean over the two signs), its shift ``|h*_t - h*_0| / |h*_0|``.

:func:`run_interference` sweeps the drives and seeds (resumable: a pair with its ``pair.json`` is done), and returns
the table (means over seeds per drive) and the checks of issue 19's bar: forgetting rises monotonically as the
drive falls, and Spearman's rank correlation of rotation with forgetting (over the drive means, and over all pairs).
"""
from __future__ import annotations

import copy
import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.stats
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from spikes.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from spikes.models.rate_rnn import RateRNN
from spikes.reports.interference import (activity_subspace, angle_deg, drive_norms, find_fixed_points,
                                         principal_angles, update_cosines, update_norms)
from spikes.reports.plots import png
from spikes.training.callbacks import Callback
from spikes.training.checkpoint import build_model, load_checkpoint
from spikes.training.config import RunConfig, parse_overrides, resolve_config
from spikes.training.loop import CHECKPOINT_FILE, evaluate, make_batch, open_split, train

PAIR_FILE, RESULTS_FILE, TABLE_FILE, FIGURE_FILE = "pair.json", "results.json", "table.md", "interference.png"


@dataclass(frozen=True)
class InterferenceOptions:
    """The sweep: model and rule, A's input drives, B's drive, seeds, the two trainings' settings."""

    model: str = "rate_rnn"
    rule: str = ""                                   # "" = the model's default rule
    drives: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    drive_b: float = 0.0
    seeds: tuple = (0, 1, 2)
    n_rec: int = 64
    epochs_a: int = 10
    epochs_b: int = 10
    lr: float = 3e-3
    batch_size: int = 32
    train_limit: int = 0                             # 0 = the memory set's 1024 trials
    test_limit: int = 0                              # 0 = 256
    memory_spikes: int = 0                           # Poisson inputs per task and sign (spiking models); 0: analog
    snapshots: int = 5                               # weight copies while B learns (besides its start)
    fixed_point_starts: int = 64                     # finder starts per cue sign
    overrides: tuple = ()                            # more "TABLE.KEY=VALUE" settings of both runs
    extra: dict = field(default_factory=dict)        # free-form notes kept with the results

    def __post_init__(self) -> None:
        if not self.drives or not all(0.0 <= float(d) <= 1.0 for d in self.drives):
            raise ValueError(f"InterferenceOptions.drives must be input drives in [0, 1], got {list(self.drives)}")
        if not 0.0 <= self.drive_b <= 1.0:
            raise ValueError(f"InterferenceOptions.drive_b must be in [0, 1], got {self.drive_b}")
        if not self.seeds or min(self.epochs_a, self.epochs_b, self.n_rec, self.batch_size) < 1:
            raise ValueError("InterferenceOptions: need at least one seed, and epochs_a, epochs_b, n_rec, batch_size "
                             ">= 1")
        if self.snapshots < 1 or self.fixed_point_starts < 1:
            raise ValueError(f"InterferenceOptions: snapshots and fixed_point_starts must be >= 1, got "
                             f"{self.snapshots}, {self.fixed_point_starts}")


def task_config(options: InterferenceOptions, task: int, drive: float, seed: int, epochs: int,
                init_from: str = "") -> RunConfig:
    """The run config of one task of the pair (the ``[model]`` defaults of the kind, ``n_rec``; rate networks on
    signed targets with the other output silent, learning their recurrent weights: ``model.loss = mse_silent``,
    ``model.learn = recurrent``, each output read along its task's input vector, ``model.readout = input``)."""
    model: dict[str, Any] = {"kind": options.model, "n_rec": options.n_rec}
    if options.model == "rate_rnn":
        model.update(loss="mse_silent", learn="recurrent", readout="input")
    tables = {"model": model, "rule": {"name": options.rule} if options.rule else {},
              "data": {"dataset": "memory", "memory_task": task, "input_drive": float(drive),
                       "memory_spikes": options.memory_spikes, "train_limit": options.train_limit,
                       "test_limit": options.test_limit},
              "train": {"epochs": epochs, "lr": options.lr, "batch_size": options.batch_size, "seed": seed,
                        "threads": 1, "progress": False, "checkpoint_every": 0, "init_from": init_from}}
    for table, values in parse_overrides(list(options.overrides)).items():
        tables[table].update(values)
    return resolve_config(None, tables)


class WeightSnapshots(Callback):
    """Copies of the weights at the start of training and every ``every`` steps (and at the end)."""

    def __init__(self, every: int):
        self.every = max(1, int(every))
        self.snapshots: list[tuple[int, dict[str, torch.Tensor]]] = []

    def _take(self, state) -> None:
        if not self.snapshots or self.snapshots[-1][0] != state.step:
            self.snapshots.append((state.step, copy.deepcopy(state.model.state_dict())))

    def on_train_start(self, state) -> None:
        self._take(state)

    def on_step_end(self, state, out) -> None:
        if state.step % self.every == 0:
            self._take(state)

    def on_train_end(self, state) -> None:
        self._take(state)


@torch.no_grad()
def _states(model, kind, dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x (T, B, n_in), h (T, B, N), labels)`` of ``model`` on the whole of ``dataset``."""
    batch = make_batch(kind, *dataset.batch(torch.arange(len(dataset))), dataset.loss_mask)
    _, h = model(batch.x)
    return batch.x, h.detach(), batch.y


class TaskReadout(torch.nn.Module):
    """``model`` scored on one task's own readout: ``forward(x) -> (y', *rest)`` where, for ``n_tasks`` outputs
    (signed targets), the other tasks' outputs are 0, and for ``2 n_tasks`` logits (classifiers) the other tasks'
    logits are -1e9; with ``silent = True`` the task's own outputs are 0 as well (the reference of forgetting)."""

    def __init__(self, model, task: int, n_tasks: int, silent: bool = False):
        super().__init__()
        self.model, self.task, self.n_tasks, self.silent = model, int(task), int(n_tasks), bool(silent)

    def forward(self, x):
        out = self.model(x)
        y, rest = out[0], tuple(out[1:])
        width = y.shape[-1]
        if width == self.n_tasks:
            own, other = slice(self.task, self.task + 1), 0.0
        elif width == 2 * self.n_tasks:
            own, other = slice(2 * self.task, 2 * self.task + 2), -1e9
        else:
            raise ValueError(f"TaskReadout: a model with {width} outputs serves neither {self.n_tasks} signed "
                             f"targets nor {2 * self.n_tasks} classes")
        keep = torch.zeros(width, dtype=torch.bool)
        keep[own] = True
        y = torch.where(keep, torch.zeros_like(y) if self.silent else y, torch.full_like(y, other))
        return (y, *rest)


def _recurrent(model) -> torch.Tensor:
    return (model.recurrent_weight() if hasattr(model, "recurrent_weight") else model.w_rec).detach()


def _a_fixed_points(model, kind, dataset, n_starts: int, seed: int) -> dict[str, Any]:
    """A's fixed point per cue sign (module docstring) and every fixed point the finder met."""
    x, h, y = _states(model, kind, dataset)
    mask = torch.as_tensor(dataset.loss_mask).bool()
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {"points": [], "q": [], "found": 0, "stable": 0}
    for sign in (0, 1):
        trials = (y % 2) == sign
        x_c = x[-1, trials].mean(0).double()
        resp = h[mask][:, trials].reshape(-1, h.shape[-1]).double()
        pick = torch.randint(0, len(resp), (n_starts,), generator=gen)
        starts = resp[pick] + 0.05 * torch.randn(n_starts, h.shape[-1], generator=gen, dtype=torch.float64)
        model_d = copy.deepcopy(model).double()
        fps = find_fixed_points(lambda v: model_d.step(x_c.expand(len(v), -1), v), starts)
        point, q = fps.nearest(h[-1, trials].mean(0).double().numpy())
        out["points"].append(point)
        out["q"].append(q)
        out["found"] += len(fps)
        out["stable"] += int(fps.stable.sum())
    return out


def analyse_pair(out_dir: str | Path, drive: float, seed: int, options: InterferenceOptions,
                 log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Train A then B in ``out_dir`` (``A/``, ``B/``) and measure the interference (module docstring); the row is
    also written to ``out_dir/pair.json``."""
    out_dir = Path(out_dir)
    cfg_a = task_config(options, 0, drive, seed, options.epochs_a)
    train(cfg_a, out_dir / "A", resume=True, log=log)
    ckpt_a = load_checkpoint(out_dir / "A" / CHECKPOINT_FILE)
    kind = cfg_a.kind
    model_0 = kind.construct(dict(ckpt_a["model"]["kwargs"]))
    model_a = build_model(ckpt_a)
    cfg_b = task_config(options, 1, options.drive_b, seed, options.epochs_b,
                        init_from=str(out_dir / "A" / CHECKPOINT_FILE))
    if (out_dir / "B").exists():                     # snapshots live in memory: an unfinished B starts again
        shutil.rmtree(out_dir / "B")
    test_a, test_b = open_split(cfg_a, "test"), open_split(cfg_b, "test")
    steps_b = math.ceil(len(open_split(cfg_b, "train")) / cfg_b.train.batch_size) * cfg_b.train.epochs
    snaps = WeightSnapshots(max(1, steps_b // options.snapshots))
    summary_b = train(cfg_b, out_dir / "B", log=log, callbacks=[snaps])
    model_b = build_model(load_checkpoint(out_dir / "B" / CHECKPOINT_FILE))
    objective = kind.objective(dict(ckpt_a["model"]["kwargs"]), 0.0)
    bs = 2 * cfg_a.train.batch_size
    model_0.eval()
    n_tasks = test_a.cfg.n_tasks
    on_a = {name: evaluate(TaskReadout(m, 0, n_tasks, silent=name == "silent"), kind, objective, test_a, bs)
            for name, m in (("init", model_0), ("silent", model_a), ("after_a", model_a), ("after_b", model_b))}
    metric = objective.metric_name
    l0, ls, la, lb = (on_a[k]["loss"] for k in ("init", "silent", "after_a", "after_b"))
    gained = ls - la
    row: dict[str, Any] = {
        "drive": float(drive), "seed": int(seed), "model": options.model, "rule": cfg_a.rule,
        "a_loss": {"init": l0, "silent": ls, "after_a": la, "after_b": lb},
        "a_metric": {k: on_a[k].get(metric) for k in on_a}, "metric_name": metric,
        "b_metric": summary_b.get("test_metric"), "b_loss": summary_b.get("test_loss"),
        "forgetting": (lb - la) / gained if gained > 0 else math.nan,
        "a_learned": gained > 0,
    }
    w0, wa, wb = (m.state_dict() for m in (model_0, model_a, model_b))
    rec_name = "w_rec" if "w_rec" in wa else None
    if rec_name is None:
        raise ValueError(f"model {options.model!r} has no 'w_rec' weight: the interference analysis needs w_in, "
                         "w_rec and w_out")
    row["update_cosine"] = update_cosines(w0, wa, wb)
    row["update_norm"] = update_norms(w0, wa, wb)

    mask_a, mask_b = torch.as_tensor(test_a.loss_mask).bool(), torch.as_tensor(test_b.loss_mask).bool()
    xa, ha, _ = _states(model_a, kind, test_a)
    xb, hb, _ = _states(model_b, kind, test_b)
    xab, hab, _ = _states(model_b, kind, test_a)
    row["drive_a"] = drive_norms(model_a.w_in.detach(), _recurrent(model_a), xa, ha, mask_a)
    row["drive_b"] = drive_norms(model_b.w_in.detach(), _recurrent(model_b), xb, hb, mask_b)
    sub_a, sub_b, sub_ab = (activity_subspace(s.numpy()) for s in (ha, hb, hab))
    ang = principal_angles(sub_a, sub_b)
    ang_ab = principal_angles(sub_a, sub_ab)
    row["subspace"] = {"dim_a": sub_a.shape[1], "dim_b": sub_b.shape[1], "angles_ab_deg": ang.tolist(),
                       "mean_angle_ab_deg": float(ang.mean()), "min_angle_ab_deg": float(ang.min()),
                       "angles_a_before_after_deg": ang_ab.tolist(), "mean_angle_a_before_after_deg": float(ang_ab.mean())}

    if isinstance(model_a, RateRNN):                 # rate networks: A's fixed points while B learns
        track = []
        probe = copy.deepcopy(model_a)
        first = None
        for step, weights in snaps.snapshots:
            probe.load_state_dict(weights)
            probe.eval()
            fp = _a_fixed_points(probe, kind, test_a, options.fixed_point_starts, seed)
            if first is None:
                first = fp
            rot = [angle_deg(p0, p) for p0, p in zip(first["points"], fp["points"])]
            shift = [float(np.linalg.norm(p - p0) / max(np.linalg.norm(p0), 1e-12))
                     for p0, p in zip(first["points"], fp["points"])]
            track.append({"step": step, "rotation_deg": float(np.mean(rot)), "shift": float(np.mean(shift)),
                          "q": [float(q) for q in fp["q"]], "found": fp["found"], "stable": fp["stable"],
                          "a_loss": evaluate(TaskReadout(probe, 0, n_tasks), kind, objective, test_a, bs)["loss"]})
        row["fixed_points"] = {"track": track, "rotation_deg": track[-1]["rotation_deg"],
                               "shift": track[-1]["shift"], "found_after_a": first["found"],
                               "stable_after_a": first["stable"], "norm_after_a": [float(np.linalg.norm(p))
                                                                                  for p in first["points"]]}
    atomic_write_json(out_dir / PAIR_FILE, row)
    return row


def _mean(values) -> float:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else math.nan


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds per drive (sorted by drive, falling), and the checks of the bar."""
    drives = sorted({r["drive"] for r in rows}, reverse=True)
    table = []
    for d in drives:
        rs = [r for r in rows if r["drive"] == d]
        entry = {"drive": d, "n": len(rs), "forgetting": _mean(r["forgetting"] for r in rs),
                 "forgetting_sd": float(np.std([r["forgetting"] for r in rs])),
                 "a_metric_after_a": _mean(r["a_metric"]["after_a"] for r in rs),
                 "a_metric_after_b": _mean(r["a_metric"]["after_b"] for r in rs),
                 "b_metric": _mean(r["b_metric"] for r in rs),
                 "input_fraction_a": _mean(r["drive_a"]["input_fraction"] for r in rs),
                 "cos": {b: _mean(r["update_cosine"][b] for r in rs) for b in ("input", "recurrent", "readout")},
                 "mean_angle_ab_deg": _mean(r["subspace"]["mean_angle_ab_deg"] for r in rs),
                 "mean_angle_a_before_after_deg": _mean(r["subspace"]["mean_angle_a_before_after_deg"] for r in rs)}
        if all("fixed_points" in r for r in rs):
            entry["rotation_deg"] = _mean(r["fixed_points"]["rotation_deg"] for r in rs)
            entry["shift"] = _mean(r["fixed_points"]["shift"] for r in rs)
            entry["fixed_points_after_a"] = _mean(r["fixed_points"]["found_after_a"] for r in rs)
        table.append(entry)
    f = [e["forgetting"] for e in table]                     # drives falling
    checks: dict[str, Any] = {"settings": len(table),
                              "monotone": bool(len(f) >= 2 and all(b > a for a, b in zip(f, f[1:])))}
    if all("rotation_deg" in e for e in table) and len(table) >= 3:
        checks["spearman_rotation_forgetting_means"] = float(scipy.stats.spearmanr(
            [e["rotation_deg"] for e in table], f).statistic)
        checks["spearman_rotation_forgetting_pairs"] = float(scipy.stats.spearmanr(
            [r["fixed_points"]["rotation_deg"] for r in rows], [r["forgetting"] for r in rows]).statistic)
    checks["met"] = bool(checks["monotone"] and len(table) >= 4 and checks.get(
        "spearman_rotation_forgetting_means", 1.0 if "rotation_deg" not in table[0] else -1.0) >= 0.8)
    return {"table": table, "checks": checks}


def format_table(summary: dict[str, Any], title: str = "") -> str:
    """The markdown table of :func:`summarise`."""
    t = summary["table"]
    fp = "rotation_deg" in t[0]
    head = ["A's input drive", "measured input fraction", "A after A", "A after B", "B", "forgetting",
            "cos input", "cos rec", "cos readout", "angle A/B subspaces", "A before/after B"]
    if fp:
        head += ["A fixed points", "rotation", "shift"]
    lines = ([f"**{title}**", ""] if title else []) + ["| " + " | ".join(head) + " |",
                                                       "|" + "---|" * len(head)]
    for e in t:
        cells = [f"{e['drive']:.2f}", f"{e['input_fraction_a']:.2f}", f"{e['a_metric_after_a']:.3f}",
                 f"{e['a_metric_after_b']:.3f}", f"{e['b_metric']:.3f}",
                 f"{e['forgetting']:.3f} ± {e['forgetting_sd']:.3f}",
                 *(f"{e['cos'][b]:+.2f}" if not math.isnan(e["cos"][b]) else "fixed"
                   for b in ("input", "recurrent", "readout")),
                 f"{e['mean_angle_ab_deg']:.0f}°", f"{e['mean_angle_a_before_after_deg']:.0f}°"]
        if fp:
            cells += [f"{e['fixed_points_after_a']:.1f}", f"{e['rotation_deg']:.1f}°", f"{e['shift']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    c = summary["checks"]
    lines += ["", f"forgetting rises monotonically as the drive falls: {'yes' if c['monotone'] else 'no'} "
                  f"({c['settings']} settings)"]
    if "spearman_rotation_forgetting_means" in c:
        lines.append(f"Spearman(rotation, forgetting): {c['spearman_rotation_forgetting_means']:.2f} over the drive "
                     f"means, {c['spearman_rotation_forgetting_pairs']:.2f} over all pairs")
    return "\n".join(lines)


def figure(rows: list[dict[str, Any]], summary: dict[str, Any], title: str = ""):
    """Forgetting vs input drive; A's fixed-point rotation against A's loss while B learns; update cosines."""
    t = summary["table"]
    fp = "rotation_deg" in t[0]
    fig = Figure(figsize=(13 if fp else 9, 3.6))
    axes = fig.subplots(1, 3 if fp else 2)
    d = [e["drive"] for e in t]
    ax = axes[0]
    ax.errorbar(d, [e["forgetting"] for e in t], yerr=[e["forgetting_sd"] for e in t], marker="o", capsize=3,
                label="forgetting of A")
    ax.plot(d, [e["input_fraction_a"] for e in t], marker="s", ls="--", label="measured input fraction")
    ax.set_xlabel("A's input drive (cue amplitude through the response)")
    ax.set_title(title or "interference", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    for b, m in (("input", "o"), ("recurrent", "s"), ("readout", "^")):
        ax.plot(d, [e["cos"][b] for e in t], marker=m, label=b)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("A's input drive")
    ax.set_ylabel("cos(dW_A, dW_B)")
    ax.legend(fontsize=7)
    if fp:
        ax = axes[2]
        cmap = {dv: c for dv, c in zip(sorted(set(d)), ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"] * 4)}
        for r in rows:
            tr = r["fixed_points"]["track"]
            ax.plot([p["rotation_deg"] for p in tr], [p["a_loss"] for p in tr], marker=".", color=cmap[r["drive"]],
                    alpha=0.7, label=f"drive {r['drive']:.2f}" if r["seed"] == rows[0]["seed"] else None)
        ax.set_xlabel("rotation of A's fixed points while B learns (deg)")
        ax.set_ylabel("A's test loss")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run_interference(out_dir: str | Path, options: InterferenceOptions, progress: bool = True,
                     log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """The sweep (module docstring) in ``out_dir`` (``drive<d>-seed<s>/`` per pair); writes ``results.json``,
    ``table.md`` and ``interference.png`` there (atomically) and returns the results."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(float(d), int(s)) for d in options.drives for s in options.seeds]
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)           # the finder's small matrices: more threads only wait on each other
    try:
        for d, s in tqdm(pairs, desc=f"interference {options.model}", disable=not progress):
            pair_dir = out / f"drive{d:.2f}-seed{s}"
            done = pair_dir / PAIR_FILE
            if done.exists():
                rows.append(json.loads(done.read_text()))
                continue
            rows.append(analyse_pair(pair_dir, d, s, options, log=log))
    finally:
        torch.set_num_threads(threads)
    summary = summarise(rows)
    title = f"{options.model} ({rows[0]['rule']})"
    result = {"options": asdict(options), "rows": rows, **summary, "title": title}
    atomic_write_json(out / RESULTS_FILE, result)
    atomic_write_text(out / TABLE_FILE, format_table(summary, title) + "\n")
    atomic_write_bytes(out / FIGURE_FILE, png(figure(rows, summary, title)))
    return result
