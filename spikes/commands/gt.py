"""``spikes gt``: train differential growth-transform networks on a scikit-learn dataset, compare with
logistic regression (accuracy) and report the energy (spikes per neuron per iteration)."""
from __future__ import annotations

import argparse

from spikes.io import atomic_write_json

HELP = "train growth-transform spiking networks (local, backprop-less rule) on wine / breast_cancer / digits"
ARCHITECTURES = ("network1", "network2", "network3")
DEFAULT_ETA = {"network1": (1e-3,), "network2": (1e-4, 1e-3), "network3": (5e-4, 5e-4)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("wine", "breast_cancer", "digits"), default="wine")
    parser.add_argument("--epochs", type=int, default=20, help="maximum epochs (early stopping: 6 without validation gain)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (split, couplings, shuffling)")
    parser.add_argument("--repeats", type=int, default=1, help="average over seeds seed .. seed+repeats-1")
    parser.add_argument("--architecture", choices=ARCHITECTURES + ("all",), default="all")
    parser.add_argument("--iterations", type=int, default=100, help="GT iterations per sample")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eta", type=float, nargs="+", default=None,
                        help="learning rate per layer (default: network1 1e-3; network2 1e-4 1e-3; network3 5e-4 5e-4)")
    parser.add_argument("--label-gain", type=float, default=None, help="label code magnitude (default 0.5)")
    parser.add_argument("--report", default=None, help="write a JSON report to this path (atomically)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    import torch

    from spikes.models.gt_network import GTNetwork, GTNetworkConfig, evaluate, fit, load_split, logistic_baseline

    if args.epochs < 1 or args.repeats < 1 or args.iterations < 1:
        raise SystemExit("spikes gt: --epochs, --repeats and --iterations must be >= 1")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    archs = ARCHITECTURES if args.architecture == "all" else (args.architecture,)
    seeds = list(range(args.seed, args.seed + args.repeats))
    runs = []
    for seed in seeds:
        split = load_split(args.dataset, seed)
        lr = logistic_baseline(split, seed)
        for arch in archs:
            torch.manual_seed(seed)
            extra = {} if args.label_gain is None else {"label_gain": args.label_gain}
            eta = tuple(args.eta) if args.eta else DEFAULT_ETA[arch]
            cfg = GTNetworkConfig(architecture=arch, eta=eta, iterations=args.iterations, **extra)
            net = GTNetwork(split.x_train.shape[1], split.n_classes, cfg, seed=seed)
            start = time.perf_counter()
            report = fit(net, split, args.epochs, seed, args.batch_size, progress=not args.quiet)
            test = evaluate(net, split.x_test, split.y_test)
            runs.append({"seed": seed, "architecture": arch, "logistic_regression": lr, **test,
                         "neurons": net.n_neurons, "train_spikes_per_sample": report.train_spikes,
                         "val_accuracy": report.val_accuracy, "best_epoch": report.best_epoch,
                         "seconds": time.perf_counter() - start})

    print(f"dataset {args.dataset}, seeds {seeds}, {args.iterations} GT iterations per sample")
    header = f"{'model':<20}{'accuracy':>10}{'+-':>7}{'energy':>10}{'spikes/sample ep1 -> last':>28}{'epochs':>8}"
    print(header)
    print("-" * len(header))
    lr_acc = [r["logistic_regression"] for r in runs if r["architecture"] == archs[0]]
    print(f"{'logistic regression':<20}{np.mean(lr_acc):>10.4f}{np.std(lr_acc):>7.3f}{'-':>10}{'-':>28}{'-':>8}")
    summary = {}
    for arch in archs:
        rs = [r for r in runs if r["architecture"] == arch]
        acc = [r["accuracy"] for r in rs]
        first = np.mean([r["train_spikes_per_sample"][0] for r in rs])
        last = np.mean([r["train_spikes_per_sample"][-1] for r in rs])
        epochs = np.mean([len(r["train_spikes_per_sample"]) for r in rs])
        summary[arch] = {"accuracy_mean": float(np.mean(acc)), "accuracy_std": float(np.std(acc)),
                         "energy_mean": float(np.mean([r["energy"] for r in rs])),
                         "train_spikes_first_epoch": float(first), "train_spikes_last_epoch": float(last),
                         "gap_to_logistic_regression": float(np.mean(lr_acc) - np.mean(acc))}
        print(f"{'GT ' + arch:<20}{np.mean(acc):>10.4f}{np.std(acc):>7.3f}{summary[arch]['energy_mean']:>10.4f}"
              f"{f'{first:.1f} -> {last:.1f}':>28}{epochs:>8.1f}")
    if args.report:
        atomic_write_json(args.report, {"dataset": args.dataset, "seeds": seeds, "epochs": args.epochs,
                                  "iterations": args.iterations, "logistic_regression_mean": float(np.mean(lr_acc)),
                                  "summary": summary, "runs": runs})
        print(f"report written to {args.report}")
    return 0
