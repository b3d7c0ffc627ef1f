"""Issue 18 acceptance experiments: BTSP on digits and the spiral (against backprop on the same E/I network and
against training only the top layer), reward-modulated fluctuations on the CTRNN oscillator over 20 seeds and on a
recurrent LIF population. Every run goes through the one trainer (``spikes.training.loop.train``).

    python benchmarks/bench_local_rules.py [--part btsp|fluctuation|all] [--only spiral] [--seeds 20] [--out DIR]
                                           [--plot PNG]

Prints the table, the acceptance checks, and writes ``results.json`` (and the run directories) into ``--out`` and
the figure to ``--plot`` (default ``OUT/local_rules.png``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from spikes.io import atomic_write_json
from spikes.training.config import resolve_config
from spikes.training.loop import open_split, train

# name -> (dataset, [model] overrides, [rule] table, [train] table). Backprop gets its own init of the somatic
# inhibition (0.5: at BTSP's 1.0 its gradients silence the ReLU units) and cross-entropy on the rates; the row
# "backprop at BTSP's init" shows it on exactly BTSP's network.
BP_TRAIN = {"epochs": 20, "batch_size": 32, "lr": 1e-3}
BTSP_RUNS = {
    "digits btsp": ("digits", {}, {"name": "btsp"}, {"epochs": 10, "batch_size": 8}),
    "digits btsp top layer only": ("digits", {}, {"name": "btsp", "layers": "top"}, {"epochs": 10, "batch_size": 8}),
    "digits btsp, LIF populations": ("digits", {"kind": "ei_lif", "input_gain": 4.0}, {"name": "btsp"},
                                     {"epochs": 10, "batch_size": 8}),
    "digits backprop": ("digits", {"inhibition": 0.5, "loss": "ce"}, {"name": "bptt"}, BP_TRAIN),
    "digits backprop at btsp's init": ("digits", {"loss": "ce"}, {"name": "bptt"}, BP_TRAIN),
    "spiral btsp": ("spiral", {}, {"name": "btsp"}, {"epochs": 10, "batch_size": 8}),
    "spiral btsp top layer only": ("spiral", {}, {"name": "btsp", "layers": "top"}, {"epochs": 10, "batch_size": 8}),
    "spiral btsp, relu_gate + cap_negative": ("spiral", {}, {"name": "btsp", "relu_gate": True, "cap_negative": True},
                                              {"epochs": 10, "batch_size": 8}),
    "spiral backprop": ("spiral", {"inhibition": 0.5, "loss": "ce"}, {"name": "bptt"},
                        {"epochs": 40, "batch_size": 32, "lr": 5e-3}),
}
MODEL = {"digits": {"hidden": [128, 64]},
         "spiral": {"hidden": [64, 64], "connectivity": 1.0, "input_gain": 4.0}}   # 4 inputs: every unit sees all
FLUCTUATION: dict = {}                    # the rule's defaults
CTRNN_MODEL = {"kind": "ctrnn", "n": 3, "weight_range": 8.0, "bias_range": 2.0}
LIF_MODEL = {"kind": "lif_population", "n": 8}
LIF_FLUCTUATION = {"period_min": 200.0, "period_max": 400.0, "window": 100.0, "delay": 50.0, "init_flux": 0.5,
                   "max_flux": 1.0, "centre_bound": 2.0}
LOW_FITNESS = 0.01        # a network starts "low" below this fitness (a fixed point: ~0); improved = 2x and above it


def _train(tables: dict, run_dir: Path) -> dict:
    config = resolve_config(None, tables)
    return train(config, run_dir, log=lambda m: None)


def btsp(out: Path, only: str = "") -> dict:
    rows = {}
    for name, (dataset, model, rule, train_table) in BTSP_RUNS.items():
        if only and not name.startswith(only):
            continue
        t0 = time.perf_counter()
        s = _train({"model": {"kind": "ei_network", **MODEL[dataset], **model}, "rule": rule,
                    "data": {"dataset": dataset}, "train": {**train_table, "progress": False, "threads": 1}},
                   out / name.replace(" ", "_"))
        rows[name] = {"accuracy": s["test_accuracy"], "wall_s": time.perf_counter() - t0}
        print(f"{name:40s} test accuracy {s['test_accuracy']:.3f}  ({rows[name]['wall_s']:.0f} s)", flush=True)
    return rows


def _fitness_at_start(tables: dict) -> float:
    config = resolve_config(None, tables)
    kind = config.kind
    test = open_split(config, "test")
    kw = {**kind.resolve(config.model_options, test), "seed": config.train.seed}
    model, objective = kind.construct(kw), kind.objective(kw, 0.0)
    x = kind.prepare_input(test.batch(torch.arange(1))[0])
    with torch.no_grad():
        return float(objective.fitness(model(x))[0])


def fluctuation(out: Path, seeds: int, model: dict, rule: dict, segments: int, segment_steps: int,
                label: str, low_only: bool) -> list[dict]:
    """``seeds`` lifetimes of ``segments x segment_steps`` steps; ``low_only``: seeds whose network starts at or
    above LOW_FITNESS are skipped (and counted), so every run starts from a low-fitness network."""
    rows, seed, skipped = [], 0, 0
    while len(rows) < seeds:
        tables = {"model": model, "rule": {"name": "fluctuation", **rule},
                  "data": {"dataset": "oscillator", "train_limit": segments, "segment_steps": segment_steps},
                  "train": {"epochs": 1, "batch_size": 1, "seed": seed, "progress": False, "threads": 1,
                            "checkpoint_every": 0}}
        before = _fitness_at_start(tables)
        seed += 1
        if low_only and before >= LOW_FITNESS:
            skipped += 1
            print(f"{label} seed {seed - 1:2d}: starts at fitness {before:.4f} >= {LOW_FITNESS}, skipped", flush=True)
            continue
        after = _train(tables, out / f"{label}_{seed - 1}")["test_fitness"]
        rows.append({"seed": seed - 1, "before": before, "after": after})
        print(f"{label} seed {seed - 1:2d}: fitness {before:.4f} -> {after:.4f}", flush=True)
    return rows


def improved(row: dict, floor: float) -> bool:
    """Fitness at least doubled and above ``floor`` (a fixed point's fitness is ~0, and 2 x 0 is no bar)."""
    return row["after"] >= 2 * row["before"] and row["after"] >= floor


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    if "btsp" in results:
        names = list(results["btsp"])
        axes[0].barh(names, [results["btsp"][n]["accuracy"] for n in names])
        axes[0].axvline(0.85, ls="--", c="k")
        axes[0].set_xlabel("test accuracy")
        axes[0].set_title("BTSP vs backprop, same E/I network")
    for ax, key, title in ((axes[1], "ctrnn", "CTRNN oscillator"), (axes[2], "lif", "recurrent LIF population")):
        if key in results:
            rows = results[key]
            ax.scatter([r["before"] for r in rows], [r["after"] for r in rows])
            lim = max(max(r["after"] for r in rows), 1e-3) * 1.1
            ax.plot([0, lim], [0, 2 * lim], "k--", lw=0.8, label="2x")
            ax.set_xlim(0, lim)
            ax.set_ylim(0, lim)
            ax.set_xlabel("fitness at start")
            ax.set_ylabel("fitness after the lifetime")
            ax.set_title(f"fluctuation rule: {title}")
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("btsp", "fluctuation", "all"), default="all")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--lif-seeds", type=int, default=5)
    ap.add_argument("--only", default="", help="BTSP rows whose name starts with this (e.g. spiral)")
    ap.add_argument("--out", default="")
    ap.add_argument("--plot", default="", help="where the figure goes (default: OUT/local_rules.png)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_local_rules_"))
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    if args.part in ("btsp", "all"):
        results["btsp"] = btsp(out, args.only)
    if args.part in ("fluctuation", "all"):
        results["ctrnn"] = fluctuation(out, args.seeds, CTRNN_MODEL, FLUCTUATION, 20, 1000, "ctrnn", True)
        results["lif"] = fluctuation(out, args.lif_seeds, LIF_MODEL, LIF_FLUCTUATION, 20, 1000, "lif", False)
    print("\n| experiment | result | bar | met |\n|---|---|---|---|")
    if "btsp" in results:
        b = results["btsp"]
        if "digits btsp" in b and "digits backprop" in b:
            d, bp = b["digits btsp"]["accuracy"], b["digits backprop"]["accuracy"]
            print(f"| digits BTSP | {d:.3f} (backprop {bp:.3f}) | >= 0.85 and within 0.08 of BP | "
                  f"{d >= 0.85 and bp - d <= 0.08} |")
        if "spiral btsp" in b and "spiral btsp top layer only" in b:
            top = b["spiral btsp top layer only"]["accuracy"]
            for name in ("spiral btsp", "spiral btsp, relu_gate + cap_negative"):
                if name in b:
                    s = b[name]["accuracy"]
                    print(f"| {name} vs top layer only | {s:.3f} vs {top:.3f} | >= 0.85 and top <= 0.60 | "
                          f"{s >= 0.85 and top <= 0.60} |")
    if "ctrnn" in results:
        frac = sum(improved(r, LOW_FITNESS) for r in results["ctrnn"]) / len(results["ctrnn"])
        results["ctrnn_fraction_improved"] = frac
        print(f"| CTRNN oscillator, {len(results['ctrnn'])} seeds | {frac:.0%} improve >= 2x (and >= 0.01) | >= 70% | "
              f"{frac >= 0.7} |")
        lif = results["lif"]
        up = sum(r["after"] > r["before"] for r in lif)
        print(f"| LIF population, {len(lif)} seeds | {up}/{len(lif)} improve (mean "
              f"{sum(r['before'] for r in lif) / len(lif):.4f} -> {sum(r['after'] for r in lif) / len(lif):.4f}) | "
              f"improves | {up > len(lif) / 2} |")
    atomic_write_json(out / "results.json", results)
    figure = Path(args.plot) if args.plot else out / "local_rules.png"
    plot(results, figure)
    print(f"\nwrote {out / 'results.json'} and {figure}")


if __name__ == "__main__":
    main()
