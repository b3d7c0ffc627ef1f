"""Identifying the learning rule from observables (issue 16), benchmarked: the 200-network zoo, then the classifiers.

    .venv/bin/python benchmarks/bench_rule_id.py --out runs/rule_zoo --jobs 2        # 4 classes x 50 (about 8 min)
    .venv/bin/python benchmarks/bench_rule_id.py --out runs/rule_zoo6 --networks 20 \\
        --classes sgdm adam fa ia eprop gt --figure-prefix rule_id6                     # with the spiking rules

Generates (or reuses: finished networks are skipped) the zoo of ``spikes rules zoo`` (``--networks`` per class, the
paper's four classes by default), then runs ``spikes rules identify``'s analysis on it and prints: the accuracy of
the random forest, the linear SVM and the 1-D conv per observable family (mean +- s.e.m. over ten network-level
75/25 splits), the per-class accuracies, accuracy vs fraction of units observed and vs noise, the acceptance checks
of the issue (random forest >= 85 % on all observables, >= 75 % on activations; at 10 % of units the activations
lose less than the weights) and the zoo's generation time with the machine's load average. Writes
``OUT/identify/results.json`` and the figures ``benchmarks/figures/<prefix>_accuracy.png`` and
``<prefix>_robustness.png`` (``--quick``: a smoke run in its own folder, figures there).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spikes.io import atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: E402
from spikes.pipeline.rule_zoo import ANN_SETS, ZooOptions  # noqa: E402
from spikes.reports.rule_identify import AUGMENT, FEATURE_MODES  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "runs" / "rule_zoo"), help="zoo directory")
    p.add_argument("--networks", type=int, default=50, help="networks per class (default 50: 200 for 4 classes)")
    p.add_argument("--classes", nargs="+", default=["sgdm", "adam", "fa", "ia"])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--snn-fraction", type=float, default=ZooOptions.snn_fraction)
    p.add_argument("--datasets", nargs="+", default=list(ANN_SETS), help="the ANN networks' tabular sets")
    p.add_argument("--lr-spread", type=float, default=ZooOptions.lr_spread)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--features", default="increments", choices=FEATURE_MODES)
    p.add_argument("--augment", nargs="*", type=float, default=list(AUGMENT), metavar="FRACTION",
                   help="unit fractions of the training networks' recordings added as training examples")
    p.add_argument("--figure-prefix", default="rule_id")
    p.add_argument("--robustness-splits", type=int, default=5, help="splits per degradation setting (default 5)")
    p.add_argument("--skip-zoo", action="store_true", help="only analyse the zoo file that exists")
    p.add_argument("--splits", type=int, default=10, help="train/test splits (default 10)")
    p.add_argument("--quick", action="store_true", help="smoke run (make bench): 3 networks per class, 20 steps, "
                   "its own folder (runs/rule_zoo_quick), figures there too")
    args = p.parse_args(argv)
    if args.quick:
        args.networks, args.steps, args.splits, args.robustness_splits, args.trees = 3, 20, 3, 2, 20
        if args.out == str(ROOT / "runs" / "rule_zoo"):
            args.out = str(ROOT / "runs" / "rule_zoo_quick")

    import torch
    torch.set_num_threads(1)
    from spikes.pipeline.rule_zoo import ZOO_FILE, run_zoo
    from spikes.reports.plots import png
    from spikes.reports.rule_identify import (accuracy_figure, format_result, identify, load_zoo, robustness_drop,
                                              robustness_figure)

    out = Path(args.out)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    if not args.skip_zoo:
        run_zoo(out, ZooOptions(networks=args.networks, classes=tuple(args.classes), steps=args.steps,
                                snn_fraction=args.snn_fraction, lr_spread=args.lr_spread,
                                datasets=tuple(args.datasets)), jobs=args.jobs, threads=1)
    generation = time.perf_counter() - t0
    load_after = os.getloadavg()
    meta = json.loads((out / ZOO_FILE).with_suffix(".json").read_text())
    t1 = time.perf_counter()
    zoo = load_zoo(out / ZOO_FILE)
    result = identify(zoo, n_splits=args.splits, n_estimators=args.trees, features_mode=args.features,
                      augment=args.augment, robustness_splits=args.robustness_splits,
                      progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    result["analysis_s"] = time.perf_counter() - t1
    drop = robustness_drop(result, 0.1)
    rf = result["scores"]["rf"]
    checks = {
        "rf_all_>=_85": rf["all"]["mean"] >= 0.85,
        "rf_activations_>=_75": rf["activations"]["mean"] >= 0.75,
        "activations_fall_less_at_10pct_units": None if drop is None else drop["activations"] < drop["weights"],
    }
    result.update(checks=checks, robustness_drop_at_10pct=drop, generation_s=meta.get("generation_s"),
                  generation_s_this_call=generation, load_average=[load_before, load_after],
                  mean_test_accuracy={c: sum(n["test_accuracy"] or 0 for n in meta["networks"] if n["cls"] == c)
                                      / max(1, sum(n["cls"] == c for n in meta["networks"])) for c in zoo.classes})
    text = format_result(result)
    print(text)
    if drop:
        print(f"\nat 10 % of units: weights lose {drop['weights']:.1f} points, activations {drop['activations']:.1f}")
    print("networks' own test accuracy per class: " + ", ".join(f"{c} {100 * v:.1f} %"
                                                                 for c, v in result["mean_test_accuracy"].items()))
    print(f"zoo generation {meta.get('generation_s') or 0:.0f} s (this call {generation:.0f} s; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after), analysis {result['analysis_s']:.0f} s")
    for name, ok in checks.items():
        print(f"  {name}: {'PASS' if ok else 'FAIL' if ok is not None else 'n/a'}")
    ident = out / "identify"
    ident.mkdir(parents=True, exist_ok=True)
    atomic_write_json(ident / "results.json", result)
    atomic_write_text(ident / "results.md", text + "\n")
    figures = out if args.quick else ROOT / "benchmarks" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(figures / f"{args.figure_prefix}_accuracy.png", png(accuracy_figure(result)))
    atomic_write_bytes(figures / f"{args.figure_prefix}_robustness.png", png(robustness_figure(result)))
    print(f"wrote {ident}/results.json and {figures}/{args.figure_prefix}_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
