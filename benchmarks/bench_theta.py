"""Theta neurons with exact spike-time gradients (``theta_snn``) vs a surrogate-gradient LIF network of the same size,
on binarised scikit-learn digits and the generated Yin-Yang set; and the trained theta networks in Lava.

For each task:

- ``theta_snn`` trained with ``--rule bptt`` (autograd through the exact spike times) by the one trainer, from a
  silent start (the fraction of silent neurons before training is measured on the test set: per sample, and never
  spiking on any sample);
- a LIF network of the same size (:func:`lif_net`: Linear - LIF - Linear - LIF, output spike counts, the
  classifiers' LIF with its default surrogate and Kaiming x ``gain`` init, as ``mlp_snn`` with one hidden layer;
  ``--model bench_theta:lif_net``) on the same inputs with the same TTFS coding put on a time grid of
  ``--lif-steps`` steps over the trial (each input spikes once, in the step of its spike time), same epochs, batch,
  optimizer and learning rate;
- accuracy, spikes per hidden neuron per sample, training time; for theta also the accuracy decided on ordinary
  spikes only and the Lava check: the trained network in Lava's floating-point simulation
  (``spikes.deploy.processes.theta``, grid step ``--lava-dt``) against the exact event-based first output spikes:
  a sample counts when every output neuron spikes in both or in neither and the first spike times differ by at
  most one Lava step.

``python benchmarks/bench_theta.py`` prints the markdown table, writes the JSON rows and the figure
(``--figure``); ``--quick`` runs a few epochs on part of the data (a smoke run, not the figures).
"""
from __future__ import annotations

try:  # lava sets the multiprocessing start method at import: before anything else can (as tests/conftest.py does)
    from spikes.deploy.processes.theta import run_theta_lava
    HAVE_LAVA = True
except ImportError:  # the optional extra spikes[lava]: without it the Lava check is skipped
    HAVE_LAVA = False

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikes.datasets.labelled import TensorSet
from spikes.layers import TimeDistributed
from spikes.models.classifiers import SpikingClassifier, _scaled_init, make_neuron
from spikes.io import atomic_write_json
from spikes.models.registry import KINDS
from spikes.models.theta_network import TTFSObjective
from spikes.learning.rule import Batch
from spikes.training.checkpoint import load_model
from spikes.training.config import parse_overrides, resolve_config
from spikes.training.loop import open_split, train

REPO = Path(__file__).resolve().parents[1]

TASKS = {
    "digits": {"model": {"hidden": [64]}, "train": {"epochs": 60, "batch_size": 32, "lr": 0.01}},   # gamma: the paper's
    "yinyang": {"model": {"hidden": [120], "coding": "latency", "bias_input": True, "w_scale": 1.0,
                          "phi0_fraction": 0.3, "gamma": 0.1},
                "train": {"epochs": 60, "batch_size": 32, "lr": 0.01}},
}


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return json.dumps(v)


def theta_config(task: str, epochs: int | None, limit: int, seed: int):
    spec = TASKS[task]
    items = [f'model.kind="theta_snn"', 'rule.name="bptt"', f'data.dataset="{task}"', "train.progress=true",
             "train.threads=1", f"train.seed={seed}", "train.checkpoint_every=0"]
    items += [f"model.{k}={_toml(v)}" for k, v in spec["model"].items()]
    items += [f"train.{k}={_toml(v)}" for k, v in spec["train"].items() if not (k == "epochs" and epochs)]
    if epochs:
        items.append(f"train.epochs={epochs}")
    if limit:
        items += [f"data.train_limit={limit}", f"data.test_limit={limit}"]
    return resolve_config(None, parse_overrides(items))


def silent_start(config) -> dict[str, float]:
    """Activity of the untrained network on the test set: hidden and output neurons silent per sample, neurons
    that spike on no test sample, and the accuracy."""
    test = open_split(config, "test")
    kind = config.kind
    model = kind.construct({**kind.resolve(config.model_options, test), "seed": config.train.seed}).eval()
    with torch.no_grad():
        out = model(test.x.unsqueeze(0))
    counts = torch.cat([out.hidden_counts, torch.isfinite(out.ordinary).to(out.hidden_counts.dtype)], dim=1)
    sums = TTFSObjective(0.0, model.trial_time).metric_sums(out, Batch(test.x, test.targets))
    return {"silent_per_sample": float((counts == 0).double().mean()),
            "never_spiking": float((counts.sum(0) == 0).double().mean()),
            "accuracy": sums["accuracy"] / len(test)}


def lava_check(run_dir: Path, config, dt: float, n: int, copies: int) -> dict[str, float]:
    """Trained network in Lava vs its exact first output spikes (module docstring), on the first ``n`` test samples."""
    model, _, _ = load_model(run_dir / "checkpoint.pt")
    model.eval()
    test = open_split(config, "test")
    x = test.x[:n] if n else test.x
    with torch.no_grad():
        exact = model(x).ordinary.numpy()
    t0 = time.perf_counter()
    lava = run_theta_lava(model.to_graph(dt=dt), model.grid_inputs(x, dt), copies=copies)
    wall = time.perf_counter() - t0
    both = np.isfinite(exact) & np.isfinite(lava)
    same = np.isfinite(exact) == np.isfinite(lava)
    close = np.where(both, np.abs(np.where(both, exact, 0) - np.where(both, lava, 0)) <= dt + 1e-12, True)
    ok = (same & close).all(1)
    err = np.abs(exact[both] - lava[both])
    return {"lava_samples": int(len(x)), "lava_match": float(ok.mean()), "lava_dt": dt,
            "lava_max_err": float(err.max()) if err.size else 0.0, "lava_wall_s": wall,
            "output_spiking_fraction": float(np.isfinite(exact).mean())}


def lif_net(input_shape: tuple[int, int, int], n_classes: int, hidden: int = 64, gain: float = 2.0):
    """Linear(D -> hidden) - LIF - Linear(hidden -> K) - LIF, output spike counts (``mlp_snn`` with one hidden
    layer), on frames ``(T, B, D, 1, 1)``."""
    n_in = int(math.prod(input_shape))
    features = nn.Sequential(TimeDistributed(nn.Flatten()), TimeDistributed(nn.Linear(n_in, hidden)),
                             make_neuron("lif"))
    model = SpikingClassifier(features, TimeDistributed(nn.Linear(hidden, n_classes)), "count", "lif")
    _scaled_init(model, gain)
    return model


def grid_frames(model, x: torch.Tensor, steps: int) -> torch.Tensor:
    """``(B, steps, D, 1, 1)`` 0/1: the theta model's input spike times on a grid of ``steps`` over its trial."""
    t = model.input_spike_times(x).numpy()
    dt = model.trial_time / steps
    frames = np.zeros((t.shape[0], steps, t.shape[1], 1, 1), np.float32)
    b, d = np.nonzero(np.isfinite(t))
    k = np.minimum(np.floor(t[b, d] / dt).astype(int), steps - 1)
    frames[b, k, d, 0, 0] = 1.0
    return torch.from_numpy(frames)


def lif_baseline(theta_cfg, run_dir: Path, steps: int, gain: float) -> dict[str, float]:
    """The LIF network of the same size on the same coded inputs (module docstring), through the trainer."""
    kind = theta_cfg.kind
    sets = {s: open_split(theta_cfg, s) for s in ("train", "test")}
    coder = kind.construct({**kind.resolve(theta_cfg.model_options, sets["train"]), "seed": 0}).eval()
    data = {}
    for split, s in sets.items():
        frames = grid_frames(coder, s.x, steps)
        data[split] = TensorSet(frames, s.targets, s.classes, "frames", {"name": f"{theta_cfg.dataset}-ttfs-grid",
                                                                          "split": split, "steps": steps})
    hidden = list(theta_cfg.model_options.hidden)
    if len(hidden) != 1:
        raise ValueError("bench_theta: the LIF baseline has one hidden layer; give the theta model one")
    t = theta_cfg.train
    items = ['model.kind="bench_theta:lif_net"', 'rule.name="bptt"', f'data.dataset="{theta_cfg.dataset}"',
             f"model.hidden={hidden[0]}", f"model.gain={gain}",
             f"train.epochs={t.epochs}", f"train.batch_size={t.batch_size}", f"train.lr={t.lr}", "train.threads=1",
             f"train.seed={t.seed}", "train.checkpoint_every=0", "train.progress=true"]
    summary = train(resolve_config(None, parse_overrides(items)), run_dir, log=lambda m: None,
                    train_set=data["train"], test_set=data["test"])
    rate = summary["firing_rates"]
    hidden_layer = "features.2"                         # the hidden LIF (the other one is "output")
    return {"accuracy": summary["test_accuracy"], "hidden_spikes_per_neuron": rate[hidden_layer] * steps,
            "train_time_s": summary["wall_time_s"], "hidden_layer": hidden_layer}


def plot(rows: list[dict], runs: dict[str, Path], path: Path, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(rows), figsize=(5.2 * len(rows), 7.0), squeeze=False)
    for j, row in enumerate(rows):
        task = row["task"]
        ax = axes[0, j]
        for name, color in (("theta", "C0"), ("lif", "C1")):
            log = [json.loads(l) for l in (runs[f"{task}-{name}"] / "metrics.jsonl").read_text().splitlines()]
            epochs = sorted({r["epoch"] for r in log})
            acc = [np.mean([r["accuracy"] for r in log if r["epoch"] == e]) for e in epochs]
            label = "theta, exact gradient" if name == "theta" else "LIF, surrogate gradient"
            ax.plot(np.arange(1, len(acc) + 1), acc, color=color, label=label)
        ax.set(title=f"{task}: training accuracy per epoch", xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
        ax.legend(loc="lower right")
        ax = axes[1, j]
        model, _, _ = load_model(runs[f"{task}-theta"] / "checkpoint.pt")
        model.eval()
        cfg = row["_config"]
        test = open_split(cfg, "test")
        with torch.no_grad():
            t = model(test.x).times.numpy()
        y = test.targets.numpy()
        label_t = t[np.arange(len(y)), y]
        mask = np.ones_like(t, bool)
        mask[np.arange(len(y)), y] = False
        bins = np.linspace(0, max(float(np.percentile(t, 99.5)), model.trial_time * 1.2), 60)
        ax.hist(label_t, bins=bins, alpha=0.7, label="label neuron", color="C2")
        ax.hist(t[mask], bins=bins, alpha=0.5, label="other outputs", color="C3")
        ax.axvline(model.trial_time, color="k", ls="--", lw=1)
        ax.text(model.trial_time, ax.get_ylim()[1] * 0.55, " trial end T\n (later: pseudospikes)", fontsize=8)
        ax.set(title=f"{task}: theta output first-spike times (test)", xlabel="time", ylabel="count")
        ax.legend(loc="upper left")
    fig.suptitle(f"{command}   ({time.strftime('%Y-%m-%d')})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--epochs", type=int, default=0, help="override the tasks' epochs (0: theirs)")
    p.add_argument("--quick", action="store_true", help="3 epochs on 256 samples: a smoke run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lif-steps", type=int, default=20, help="time steps of the LIF baseline over the trial")
    p.add_argument("--lif-gain", type=float, default=2.0, help="initial weight scale of the LIF baseline")
    p.add_argument("--lava-dt", type=float, default=0.005, help="Lava grid step (model time units; T = 2)")
    p.add_argument("--lava-samples", type=int, default=0, help="test samples run in Lava (0 = all, -1 = no Lava check; "
                                                                  "needs lava-nc)")
    p.add_argument("--lava-copies", type=int, default=50, help="samples side by side in the Lava run")
    p.add_argument("--runs", type=Path, default=None, help="keep the run directories here (default: a temp folder)")
    p.add_argument("--json", type=Path, default=None, help="default: benchmarks/results/bench_theta.json (--quick: "
                                                          "in the runs folder)")
    p.add_argument("--figure", type=Path, default=None, help="default: benchmarks/figures/theta_vs_lif.png (--quick: "
                                                            "in the runs folder)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if not HAVE_LAVA and args.lava_samples >= 0:
        p.error("the Lava check needs lava-nc (pip install spikes[lava]); --lava-samples -1 skips it")
    epochs, limit = (3, 256) if args.quick else (args.epochs, 0)
    root = args.runs or Path(tempfile.mkdtemp(prefix="bench_theta_"))
    out = root if args.quick else REPO / "benchmarks"        # a smoke run never overwrites the figures
    args.json = args.json or out / "results" / "bench_theta.json"
    args.figure = args.figure or out / "figures" / "theta_vs_lif.png"
    rows, runs = [], {}
    for task in args.tasks:
        cfg = theta_config(task, epochs, limit, args.seed)
        start = silent_start(cfg)
        runs[f"{task}-theta"] = root / f"{task}-theta"
        summary = train(cfg, runs[f"{task}-theta"], log=print)
        lava = (lava_check(runs[f"{task}-theta"], cfg, args.lava_dt, args.lava_samples, args.lava_copies)
                if args.lava_samples >= 0 else {})
        runs[f"{task}-lif"] = root / f"{task}-lif"
        lif = lif_baseline(cfg, runs[f"{task}-lif"], args.lif_steps, args.lif_gain)
        rows.append({"task": task, "hidden": list(cfg.model_options.hidden), "epochs": cfg.train.epochs,
                     "n_train": summary["n_train"], "n_test": summary["n_test"],
                     "silent_before": start["silent_per_sample"], "never_spiking_before": start["never_spiking"],
                     "accuracy_before": start["accuracy"], "theta_accuracy": summary["test_accuracy"],
                     "theta_accuracy_ordinary": summary["test_accuracy_ordinary"],
                     "theta_hidden_spikes_per_neuron": summary["test_hidden_spikes_per_neuron"],
                     "theta_train_time_s": summary["wall_time_s"], **lava,
                     "lif_accuracy": lif["accuracy"], "lif_hidden_spikes_per_neuron": lif["hidden_spikes_per_neuron"],
                     "lif_train_time_s": lif["train_time_s"], "lif_steps": args.lif_steps, "_config": cfg})
    print(table(rows))
    atomic_write_json(args.json, [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    command = "python benchmarks/bench_theta.py" + (" --quick" if args.quick else "")
    plot(rows, runs, args.figure, command)
    print(f"wrote {args.json} and {args.figure} (runs in {root})")
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| task (hidden) | silent before (per sample / never) | theta acc (ordinary spikes only) | LIF acc | "
             "hidden spikes/neuron/sample theta / LIF | train time s theta / LIF | Lava match (max err, dt) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} ({'-'.join(map(str, r['hidden']))}) | {r['silent_before']:.3f} / "
                     f"{r['never_spiking_before']:.3f} | {r['theta_accuracy']:.3f} ({r['theta_accuracy_ordinary']:.3f}) "
                     f"| {r['lif_accuracy']:.3f} | {r['theta_hidden_spikes_per_neuron']:.3f} / "
                     f"{r['lif_hidden_spikes_per_neuron']:.3f} | {r['theta_train_time_s']:.0f} / "
                     f"{r['lif_train_time_s']:.0f} | " + (f"{r['lava_match']:.3f} of {r['lava_samples']} "
                                                            f"({r['lava_max_err']:.4f}, {r['lava_dt']})"
                                                            if "lava_match" in r else "not run") + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
