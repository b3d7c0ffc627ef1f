"""``spikes rules zoo|identify``: train a population of networks under each learning rule with their observables
logged, then tell the rules apart from the observables (Nayebi et al., NeurIPS 2020).

    spikes rules zoo --out zoo --networks 50                      # 4 paper classes x 50 networks
    spikes rules zoo --out zoo6 --networks 20 --classes sgdm adam fa ia eprop gt
    spikes rules identify zoo/observables.npz --out zoo/identify  # table, results.json, figures

``zoo``: :mod:`spikes.pipeline.rule_zoo` (resumable: finished networks are skipped; tqdm progress; ``--jobs`` worker
processes of ``--threads`` threads). ``identify``: :mod:`spikes.reports.rule_identify` (random forest, linear SVM,
1-D conv over the trajectories; ten network-level 75/25 splits; accuracy vs fraction of units and vs noise).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spikes.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from spikes.pipeline.rule_zoo import ANN_SETS, CLASSES, PAPER_CLASSES, ZooOptions, run_zoo
from spikes.reports.plots import png
from spikes.reports.rule_identify import (AUGMENT, CLASSIFIERS, FAMILIES, FEATURE_MODES, accuracy_figure,
                                          format_result, identify, load_zoo, robustness_drop, robustness_figure,
                                          select_classes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    z = sub.add_parser("zoo", help="train a population of small networks per learning rule, observables logged")
    z.add_argument("--out", required=True, metavar="DIR", help="zoo directory (nets/ and observables.npz/json)")
    z.add_argument("--networks", type=int, default=50, help="networks per class (default 50)")
    z.add_argument("--classes", nargs="+", default=list(PAPER_CLASSES), choices=CLASSES, metavar="CLASS",
                   help=f"learning-rule classes among {', '.join(CLASSES)} (default: the paper's four)")
    z.add_argument("--steps", type=int, default=200, help="training steps per network (default 200)")
    z.add_argument("--checkpoints", type=int, default=21, help="observable checkpoints per network (default 21)")
    z.add_argument("--snn-fraction", type=float, default=ZooOptions.snn_fraction,
                   help="share of the paper classes' networks that are spiking MLPs "
                        f"(default {ZooOptions.snn_fraction:g})")
    z.add_argument("--seed", type=int, default=0, help="seed of the population (default 0)")
    z.add_argument("--datasets", nargs="+", default=list(ANN_SETS), choices=ANN_SETS, metavar="SET",
                   help=f"the ANN networks' tabular sets (default: {' '.join(ANN_SETS)})")
    z.add_argument("--lr-spread", type=float, default=ZooOptions.lr_spread,
                   help=f"learning rate = the optimiser's usual one x SPREAD**u, u in [-1, 1] "
                        f"(default {ZooOptions.lr_spread:g})")
    z.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    z.add_argument("--threads", type=int, default=1, help="torch threads per network (default 1)")
    z.add_argument("--data-root", default=None, help="data root of the runs (the embedded sets need none)")
    z.add_argument("--no-progress", action="store_true", help="no progress bar")
    i = sub.add_parser("identify", help="classify the learning rule from a zoo's observables")
    i.add_argument("zoo", metavar="OBS_FILE", help="the zoo file (DIR/observables.npz of 'spikes rules zoo')")
    i.add_argument("--out", metavar="DIR", help="write results.json, results.md and the figures here")
    i.add_argument("--classes", nargs="+", metavar="CLASS", help="use only these classes of the zoo")
    i.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS), choices=CLASSIFIERS, metavar="NAME",
                   help=f"among {', '.join(CLASSIFIERS)} (default all)")
    i.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES, metavar="FAMILY",
                   help=f"observable families among {', '.join(FAMILIES)} (default all)")
    i.add_argument("--features", default="increments", choices=FEATURE_MODES,
                   help="trajectories as recorded (raw), relative to their start (change), both, or the change's "
                        "steps between checkpoints (increments, default)")
    i.add_argument("--augment", nargs="*", type=float, default=list(AUGMENT), metavar="FRACTION",
                   help="unit fractions whose recordings of the training networks are extra training examples "
                        f"(default {' '.join(f'{f:g}' for f in AUGMENT)}; none: --augment)")
    i.add_argument("--splits", type=int, default=10, help="train/test splits (default 10)")
    i.add_argument("--trees", type=int, default=100, help="random forest trees (default 100)")
    i.add_argument("--seed", type=int, default=0, help="seed of the splits and classifiers (default 0)")
    i.add_argument("--no-robustness", action="store_true", help="skip accuracy vs units observed / noise")


def run(args: argparse.Namespace) -> int:
    try:
        return _zoo(args) if args.action == "zoo" else _identify(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"spikes rules {args.action}: error: {exc}", file=sys.stderr)
        return 2


def _zoo(args: argparse.Namespace) -> int:
    if args.jobs < 1 or args.threads < 1:
        raise ValueError(f"--jobs and --threads must be >= 1, got {args.jobs} and {args.threads}")
    options = ZooOptions(networks=args.networks, classes=tuple(args.classes), steps=args.steps,
                         snn_fraction=args.snn_fraction, seed=args.seed, checkpoints=args.checkpoints,
                         datasets=tuple(args.datasets), lr_spread=args.lr_spread)
    path = run_zoo(args.out, options, jobs=args.jobs, threads=args.threads, progress=not args.no_progress,
                   data_root=args.data_root)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def _identify(args: argparse.Namespace) -> int:
    zoo = load_zoo(args.zoo)
    if args.classes:
        zoo = select_classes(zoo, args.classes)
    if args.splits < 2:
        raise ValueError(f"--splits must be >= 2, got {args.splits}")
    result = identify(zoo, args.classifiers, args.families, args.splits, args.seed, not args.no_robustness,
                      args.trees, progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
                      features_mode=args.features, augment=args.augment)
    result["robustness_drop_at_10pct"] = robustness_drop(result, 0.1)
    text = format_result(result)
    print(text)
    drop = result["robustness_drop_at_10pct"]
    if drop:
        print(f"\nat 10 % of units: weights lose {drop['weights']:.1f} points, activations {drop['activations']:.1f}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "results.json", result)
        atomic_write_text(out / "results.md", text + "\n")
        atomic_write_bytes(out / "accuracy.png", png(accuracy_figure(result)))
        if result["robustness"]:
            atomic_write_bytes(out / "robustness.png", png(robustness_figure(result)))
        print(f"wrote {out}/results.json, results.md and the figures")
    return 0
