"""``spikes gt``: train differential growth-transform networks on a scikit-learn dataset, compare with
logistic regression (accuracy) and report the energy (spikes per neuron per iteration).

Each (seed, architecture) pair is one run of the trainer (:func:`spikes.training.loop.train`) on the model kind
``gt_network`` with the local rule ``gt`` (:func:`spikes.pipeline.gt.gt_run_config`): batches of ``--batch-size``,
the weights of the best validation epoch kept, an early stop after ``--patience`` epochs without a gain. Seed k
fixes the data split, the couplings and the batch order. Logistic regression is fitted on the same training part.

Prints the table (mean and standard deviation over the seeds); ``--report`` writes it as JSON (atomically):
dataset, seeds, epochs, iterations, logistic_regression_mean, summary per architecture (accuracy_mean,
accuracy_std, energy_mean, train_spikes_first_epoch, train_spikes_last_epoch, gap_to_logistic_regression) and one
row per run (seed, architecture, logistic_regression, accuracy, energy, neurons, train_spikes_per_sample and
val_accuracy per epoch, best_epoch, seconds). Run directories (config.toml, checkpoint.pt, metrics.jsonl,
summary.json) go under ``--out`` (``OUT/<dataset>_<architecture>_seed<k>/``, kept), or a temporary folder that is
removed.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from spikes.datasets.tabular import DATASETS as TABULAR_SETS, load_split
from spikes.io import atomic_write_json
from spikes.models.gt_network import ARCHITECTURES, evaluate, logistic_baseline
from spikes.pipeline.gt import gt_run_config, train_gt
from spikes.training.loop import CHECKPOINT_FILE

HELP = "train growth-transform spiking networks (local, backprop-less rule) on wine / breast_cancer"
DATASETS = TABULAR_SETS
DEFAULT_ETA = {"network1": (1e-3,), "network2": (1e-4, 1e-3), "network3": (5e-4, 5e-4)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="wine")
    parser.add_argument("--epochs", type=int, default=20, help="maximum epochs (early stopping: --patience)")
    parser.add_argument("--patience", type=int, default=6,
                        help="stop after this many epochs without validation gain (0 = never); the best epoch is kept")
    parser.add_argument("--seed", type=int, default=0, help="first seed (split, couplings, batch order)")
    parser.add_argument("--repeats", type=int, default=1, help="average over seeds seed .. seed+repeats-1")
    parser.add_argument("--architecture", choices=ARCHITECTURES + ("all",), default="all")
    parser.add_argument("--iterations", type=int, default=100, help="GT iterations per sample")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eta", type=float, nargs="+", default=None,
                        help="learning rate per layer (default: network1 1e-3; network2 1e-4 1e-3; network3 5e-4 5e-4)")
    parser.add_argument("--label-gain", type=float, default=None, help="label code magnitude (default 0.5)")
    parser.add_argument("--report", default=None, help="write a JSON report to this path (atomically)")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the run directories here (OUT/<dataset>_<architecture>_seed<k>/); default: a "
                             "temporary folder, removed at the end")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a loaded machine: the GT tensors are tiny)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def train_one(args: argparse.Namespace, arch: str, seed: int, run_dir: Path) -> dict:
    """One trainer run; returns its row of the report (test accuracy and energy of the kept network)."""
    eta = tuple(args.eta) if args.eta else DEFAULT_ETA[arch]
    n_layers = len(DEFAULT_ETA[arch])
    if len(eta) != n_layers:
        raise SystemExit(f"spikes gt: --eta needs {n_layers} learning rate(s) for {arch}, got {len(eta)}")
    if (run_dir / CHECKPOINT_FILE).exists():
        raise SystemExit(f"spikes gt: {run_dir} already holds a run; name another --out folder")
    config = gt_run_config(args.dataset, arch, eta, args.iterations, args.epochs, seed, args.batch_size,
                           args.patience, args.label_gain, progress=not args.quiet, threads=args.threads)
    result = train_gt(config, run_dir)
    split = load_split(args.dataset, seed)
    test = evaluate(result.net, split.x_test, split.y_test)
    return {"seed": seed, "architecture": arch, **test, "neurons": result.net.n_neurons,
            "train_spikes_per_sample": result.train_spikes, "val_accuracy": result.val_accuracy,
            "best_epoch": result.best_epoch, "seconds": result.summary["wall_time_s"]}


def run(args: argparse.Namespace) -> int:
    if min(args.epochs, args.repeats, args.iterations, args.batch_size, args.threads) < 1 or args.patience < 0:
        raise SystemExit("spikes gt: --epochs, --repeats, --iterations, --batch-size and --threads must be >= 1, "
                         "--patience >= 0")
    if args.label_gain is not None and not args.label_gain > 0:
        raise SystemExit(f"spikes gt: --label-gain must be > 0, got {args.label_gain}")
    torch.set_num_threads(args.threads)      # the evaluation after each run (the trainer sets its own)
    archs = ARCHITECTURES if args.architecture == "all" else (args.architecture,)
    seeds = list(range(args.seed, args.seed + args.repeats))
    runs = []
    lr_acc = []
    with tempfile.TemporaryDirectory(prefix="spikes-gt-") as tmp:
        root = args.out if args.out is not None else Path(tmp)
        for seed in seeds:
            lr = logistic_baseline(load_split(args.dataset, seed), seed)
            lr_acc.append(lr)
            for arch in archs:
                run_dir = root / f"{args.dataset}_{arch}_seed{seed}"
                row = {"logistic_regression": lr, **train_one(args, arch, seed, run_dir)}
                if args.out is not None:
                    row["run_dir"] = str(run_dir)
                runs.append(row)

    print(f"dataset {args.dataset}, seeds {seeds}, {args.iterations} GT iterations per sample")
    header = f"{'model':<20}{'accuracy':>10}{'+-':>7}{'energy':>10}{'spikes/sample ep1 -> last':>28}{'epochs':>8}"
    print(header)
    print("-" * len(header))
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
                                        "iterations": args.iterations,
                                        "logistic_regression_mean": float(np.mean(lr_acc)), "summary": summary,
                                        "runs": runs})
        print(f"report written to {args.report}")
    return 0
