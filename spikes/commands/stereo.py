"""``spikes stereo train|eval|report``: StereoSpike depth from stereo events (embedded set or MVSEC), a front-end of
the one trainer (:mod:`spikes.pipeline.stereo_report` builds the run configs: model ``stereospike``, data
``stereo-embedded`` or ``stereo:PATH``, the step schedule at the paper's milestones)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from spikes.io import atomic_write_json
from spikes.models.stereospike.metrics import evaluate, mean_depth_baseline
from spikes.options import ConfigError
from spikes.pipeline.stereo_report import (dataset_name, markdown, open_splits, run_report, stereo_config,
                                           train_and_evaluate)
from spikes.training.checkpoint import CheckpointError, load_model
from spikes.training.config import RunConfig, config_from_dict
from spikes.training.data import open_dataset

HELP = "StereoSpike: train/evaluate the spiking U-Net for stereo depth and write the SNN-vs-ANN / penalty report"


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="embedded",
                   help="'embedded' (synthetic stereo scene, no download), an MVSEC-layout hdf5 file, or a folder of "
                        "MVSEC indoor_flying files (split 1)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where the embedded data file is written (data.cache_dir)")
    p.add_argument("--base", type=int, default=8, help="channels of the first layer (paper 32)")
    p.add_argument("--levels", type=int, default=3, help="encoder levels (paper 4)")
    p.add_argument("--n-res", type=int, default=2, help="SEW residual blocks in the bottleneck (paper 2)")
    p.add_argument("--neuron", choices=("if", "plif"), default="if")
    p.add_argument("--activation", choices=("sigmoid", "tanh", "relu", "leaky_relu"), default="sigmoid",
                   help="unit activation of the ANN twin")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lam", type=float, default=0.5,
                   help="weight of the squared-mean term of the scale-invariant loss (paper 1: offset-blind)")
    p.add_argument("--grad-weight", type=float, default=0.5, help="weight of the gradient-matching loss")
    p.add_argument("--fb", type=float, default=None,
                   help="focal length x baseline (px m) for the one-pixel accuracy (default: the data's, else MVSEC's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    p.add_argument("--paper", action="store_true", help="the published size: base 32, 4 levels, 2 SEW blocks")
    p.add_argument("--no-progress", action="store_true")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = sub.add_parser("train", help="train one model into --run-dir (config.toml, checkpoint.pt, metrics.jsonl, "
                                     "summary.json)")
    _model_args(t)
    t.add_argument("--model", choices=("snn", "ann"), default="snn")
    t.add_argument("--beta", type=float, default=0.0, help="spike-penalty weight (train.spike_penalty)")
    t.add_argument("--run-dir", type=Path, default=Path("runs/stereo/train"))
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir (a finished run of the same config is only reported)")
    e = sub.add_parser("eval", help="evaluate a checkpoint on a split (MDE, one-pixel accuracy, firing rates)")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("--data", default=None, help="data to evaluate on (default: the checkpoint's own data set)")
    e.add_argument("--cache-dir", type=Path, default=None)
    e.add_argument("--split", choices=("train", "val", "test"), default="test")
    e.add_argument("--fb", type=float, default=None,
                   help="focal length x baseline (px m) (default: the data's, else the checkpoint's)")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--json", type=Path, default=None, help="also write the metrics to this JSON file")
    r = sub.add_parser("report", help="penalty sweep (SNN) + ANN twin + mean-depth baseline: report.json/.md/.png")
    _model_args(r)
    r.add_argument("--betas", type=float, nargs="+", default=[0.0, 0.5, 2.0])
    r.add_argument("--run-dir", type=Path, default=Path("runs/stereo/report"))
    r.add_argument("--finetune-epochs", type=int, default=None,
                   help="also fine-tune each penalised SNN from the beta-0 network for this many epochs")


def _config(args: argparse.Namespace, **model) -> RunConfig:
    """The run config of the flags (``model``: more [model] keys)."""
    base, levels, n_res = (32, 4, 2) if args.paper else (args.base, args.levels, args.n_res)
    return stereo_config(
        model={"base": base, "levels": levels, "n_res": n_res, "neuron": args.neuron, "activation": args.activation,
               "lam": args.lam, "grad_weight": args.grad_weight, "fb": args.fb or 0.0, **model},
        train={"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed,
               "threads": args.threads, "progress": not args.no_progress,
               "spike_penalty": getattr(args, "beta", 0.0)},
        data=args.data, data_options={"cache_dir": str(args.cache_dir)} if args.cache_dir else None, source="flags")


def _eval(args: argparse.Namespace) -> int:
    model, _, ckpt = load_model(args.checkpoint)
    if ckpt["model"]["kind"] != "stereospike":
        raise ConfigError(f"{args.checkpoint}: a {ckpt['model']['kind']!r} checkpoint, not a StereoSpike one")
    tables = ckpt.get("config", {})
    if args.data is None and not tables.get("data", {}).get("dataset"):
        raise ConfigError(f"{args.checkpoint} names no data set (converted from the first release): pass --data")
    config = config_from_dict(tables)
    options = replace(config.data, cache_dir=str(args.cache_dir)) if args.cache_dir else config.data
    dataset = dataset_name(args.data) if args.data is not None else config.dataset
    data = open_dataset(dataset, args.split, options, "" if args.data is not None else config.data_root,
                        config.train.seed)
    torch.set_num_threads(max(1, args.threads))
    fb = args.fb or data.fb or ckpt["model"]["kwargs"].get("fb")
    result = evaluate(model, data.data, fb, progress=True)
    result.update(checkpoint=str(args.checkpoint), split=args.split, data=dataset)
    if args.json:
        atomic_write_json(args.json, result, indent=2)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    config = _config(args, snn=args.model == "snn")
    train_set, test_set = open_splits(config)
    summary = train_and_evaluate(config, args.run_dir, train_set, test_set, reuse=args.resume,
                                 log=lambda m: print(m, file=sys.stderr))
    t = summary["test"]
    baseline = mean_depth_baseline(train_set.data, test_set.data)
    print(f"{args.model} beta={args.beta:g} on {config.dataset}: test MDE {t['mde']:.4f} m "
          f"(mean-depth baseline {baseline:.4f} m), one-pixel accuracy {t['one_pixel_accuracy']:.3f}"
          + (f", mean firing rate {t['mean_firing_rate']:.3f}" if "mean_firing_rate" in t else "")
          + f"; checkpoint {args.run_dir / 'checkpoint.pt'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    report = run_report(args.run_dir, _config(args), tuple(args.betas), args.finetune_epochs,
                        log=lambda m: print(m, file=sys.stderr))
    print(markdown(report))
    print(f"wrote {args.run_dir / 'report.json'}, report.md, report.png")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return {"eval": _eval, "train": _train, "report": _report}[args.action](args)
    except (ConfigError, CheckpointError, FileExistsError, FileNotFoundError) as exc:
        print(f"spikes stereo {args.action}: {exc}", file=sys.stderr)
        return 2
