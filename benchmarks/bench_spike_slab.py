"""Spike-and-slab RNN ensembles (issue 19 part A): train with the one trainer (``--rule bptt``) and measure the
acceptance figures.

- Sequential digits (scikit-learn's 8x8 digits, 8 steps of 8 pixels), 64 relu rate units (and, ``--lif``, a LIF
  RSNN driven by the mean-field current, each row shown 4 steps): mean-field test accuracy (bar >= 90 %),
  networks sampled from the learned distribution (bar: within 3 points), the fraction of prunable connections
  (pi >= 0.9) and the accuracy after pruning them (bar: costs < 2 points).
- Multisensory integration: psychometric thresholds per modality (bar: va below v and a), accuracy away from the
  boundary.

    nice -n 10 .venv/bin/python benchmarks/bench_spike_slab.py [--lif] [--seeds 1] [--out runs/spike_slab]

Writes ``OUT/results.json`` and ``benchmarks/figures/spike_slab.png`` (pi histograms, psychometric curves).
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np

from spikes.io import atomic_write_bytes, atomic_write_json
from spikes.layers.spike_slab import spike_slab_layers
from spikes.reports.plots import png
from spikes.reports.spike_slab import format_pruning, format_psychometric, open_run, pruning_report, psychometric
from spikes.training.config import resolve_config
from spikes.training.loop import train

FIGURE = Path(__file__).parent / "figures" / "spike_slab.png"
SLAB = {"kind": "spike_slab_rnn", "hidden": 64, "pi_init": 0.001, "xi_max": 0.1, "sparsity": 0.5}
TRAIN = {"lr": 1e-2, "scheduler": "constant"}      # a constant rate: under cosine decay pi did not reach 0.9
RUNS = {   # name: (model table, data set, train table, data table)
    "digits_rate": ({**SLAB, "neuron": "rate"}, "seq-digits", {**TRAIN, "epochs": 30}, {}),
    "digits_lif": ({**SLAB, "neuron": "lif", "tau_m": 4.0, "tau_out": 4.0, "repeat": 4, "input_gain": 4.0},
                   "seq-digits", {**TRAIN, "epochs": 50}, {}),
    "multisensory_rate": ({**SLAB, "neuron": "rate", "tau_m": 5.0}, "multisensory", {**TRAIN, "epochs": 8},
                          {"train_limit": 3000}),
}


def run(name: str, seed: int, out: Path) -> dict:
    model, dataset, train_table, data = RUNS[name]
    run_dir = out / f"{name}_{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    config = resolve_config(None, {"model": model, "rule": {"name": "bptt"}, "data": {"dataset": dataset, **data},
                                   "train": {"batch_size": 32, "seed": seed, "threads": 1, "progress": False,
                                             **train_table}})
    t0 = time.perf_counter()
    summary = train(config, run_dir, log=lambda m: None)
    wall = time.perf_counter() - t0
    model_, kind, objective, test, _ = open_run(run_dir)
    result = {"wall_s": wall, "load": os.getloadavg()[0], "test_accuracy": summary["test_accuracy"]}
    result["pruning"] = pruning_report(model_, kind, objective, test, threshold=0.9, samples=10, seed=seed)
    result["pi"] = {k: layer.pi.detach().flatten().tolist() for k, layer in spike_slab_layers(model_).items()}
    print(f"\n== {name} seed {seed}  ({wall:.0f} s, load {result['load']:.1f})\n" + format_pruning(result["pruning"]))
    if dataset == "multisensory":
        result["psychometric"] = psychometric(model_, kind, objective, test)
        print(format_psychometric(result["psychometric"]))
    return result


def checks(results: dict) -> list[str]:
    lines = []
    for name, per_seed in results.items():
        for seed, r in per_seed.items():
            p = r["pruning"]
            mf, sampled, pruned = p["mean_field_accuracy"], p["sampled"]["mean"], p["pruned_accuracy"]
            if "psychometric" in r:
                c = r["psychometric"]["curves"]
                ok = c["va"]["threshold"] < min(c["v"]["threshold"], c["a"]["threshold"])
                lines.append(f"{name} seed {seed}: thresholds v {c['v']['threshold']:.2f} a {c['a']['threshold']:.2f} "
                             f"va {c['va']['threshold']:.2f} Hz -> va lowest: {'PASS' if ok else 'FAIL'}; accuracy "
                             f"away from the boundary {r['psychometric']['accuracy_away_from_boundary']:.3f}")
                continue
            lines.append(f"{name} seed {seed}: mean-field {mf:.4f} (>= 0.90: {'PASS' if mf >= 0.9 else 'FAIL'}); "
                         f"sampled {sampled:.4f} ({100 * (sampled - mf):+.2f} pt, within 3: "
                         f"{'PASS' if abs(sampled - mf) <= 0.03 else 'FAIL'}); prunable {p['prunable_fraction']:.3f}, "
                         f"pruned {pruned:.4f} ({100 * (pruned - mf):+.2f} pt, < 2 pt cost: "
                         f"{'PASS' if mf - pruned < 0.02 else 'FAIL'})")
    return lines


def figure(results: dict):
    from matplotlib.figure import Figure
    from spikes.reports.spike_slab import _cumulative_gaussian

    fig = Figure(figsize=(10, 3.4))
    ax = fig.add_subplot(1, 3, 1)
    first = next(iter(results["digits_rate"].values()))
    for layer, pi in first["pi"].items():
        ax.hist(pi, bins=np.linspace(0, 1, 41), histtype="step", label=layer, density=True)
    ax.set_yscale("log")
    ax.set_xlabel("pi (probability the weight is 0)")
    ax.set_title(f"seq digits, rate: {100 * first['pruning']['prunable_fraction']:.0f} % with pi >= 0.9", fontsize=9)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 3, 2)
    names = [n for n in results if n.startswith("digits")]
    labels, mf, sa, pr = [], [], [], []
    for n in names:
        r = next(iter(results[n].values()))["pruning"]
        labels.append(n.replace("digits_", ""))
        mf.append(r["mean_field_accuracy"]), sa.append(r["sampled"]["mean"]), pr.append(r["pruned_accuracy"])
    xs = np.arange(len(labels))
    for k, (vals, lab) in enumerate(((mf, "mean field"), (sa, "sampled (10)"), (pr, "pruned pi >= 0.9"))):
        ax.bar(xs + (k - 1) * 0.27, vals, 0.27, label=lab)
    ax.set_xticks(xs, labels)
    ax.set_ylim(0.8, 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title("sequential digits", fontsize=9)
    ax.legend(fontsize=7)
    if "multisensory_rate" in results:
        ax = fig.add_subplot(1, 3, 3)
        curves = next(iter(results["multisensory_rate"].values()))["psychometric"]["curves"]
        for name, c in curves.items():
            f = np.asarray(c["rates"])
            fine = np.linspace(f.min(), f.max(), 200)
            line, = ax.plot(fine, _cumulative_gaussian(fine, c["mu"], c["threshold"]),
                            label=f"{name}: {c['threshold']:.2f} Hz")
            ax.plot(f, c["p_high"], "o", color=line.get_color(), ms=4)
        ax.set_xlabel("event rate (Hz)")
        ax.set_ylabel('fraction "high"')
        ax.set_title("multisensory task (threshold = fitted sd)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/spike_slab")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--lif", action="store_true", help="also the LIF RSNN on sequential digits")
    parser.add_argument("--only", nargs="+", choices=list(RUNS), help="just these runs")
    args = parser.parse_args()
    out = Path(args.out)
    names = args.only or [n for n in RUNS if args.lif or n != "digits_lif"]
    results = {n: {seed: run(n, seed, out) for seed in range(args.seeds)} for n in names}
    atomic_write_json(out / "results.json", {n: {s: {k: v for k, v in r.items() if k != "pi"} for s, r in per.items()}
                                             for n, per in results.items()})
    print("\n" + "\n".join(checks(results)))
    if "digits_rate" in results:
        atomic_write_bytes(FIGURE, png(figure(results)))
        print(f"wrote {FIGURE}")


if __name__ == "__main__":
    main()
