"""``spikes stereo train|eval|report``: StereoSpike depth from stereo events (embedded set or MVSEC)."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "StereoSpike: train/evaluate the spiking U-Net for stereo depth and write the SNN-vs-ANN / penalty report"


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="embedded",
                   help="'embedded' (synthetic stereo scene, no download) or an MVSEC-layout hdf5 file (split 1)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where the embedded data file is written")
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
    t = sub.add_parser("train", help="train one model into --run-dir (checkpoint.pt, metrics.json)")
    _model_args(t)
    t.add_argument("--model", choices=("snn", "ann"), default="snn")
    t.add_argument("--beta", type=float, default=0.0, help="spike-penalty weight")
    t.add_argument("--run-dir", type=Path, default=Path("runs/stereo/train"))
    e = sub.add_parser("eval", help="evaluate a checkpoint on a split (MDE, one-pixel accuracy, firing rates)")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("--data", default="embedded")
    e.add_argument("--cache-dir", type=Path, default=None)
    e.add_argument("--split", choices=("train", "val", "test"), default="test")
    e.add_argument("--fb", type=float, default=None)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--json", type=Path, default=None, help="also write the metrics to this JSON file")
    r = sub.add_parser("report", help="penalty sweep (SNN) + ANN twin + mean-depth baseline: report.json/.md/.png")
    _model_args(r)
    r.add_argument("--betas", type=float, nargs="+", default=[0.0, 0.5, 2.0])
    r.add_argument("--run-dir", type=Path, default=Path("runs/stereo/report"))
    r.add_argument("--finetune-epochs", type=int, default=None,
                   help="also fine-tune each penalised SNN from the beta-0 network for this many epochs")


def _fb(args, data) -> float:
    from spikes.models.stereospike.data import data_fb, data_path
    from spikes.models.stereospike.metrics import MVSEC_FB
    if args.fb is not None:
        return args.fb
    return data_fb(data, data_path(args.data, args.cache_dir)) or MVSEC_FB


def _config(args, **kw):
    from spikes.models.stereospike.train import StereoConfig
    base, levels, n_res = (32, 4, 2) if args.paper else (args.base, args.levels, args.n_res)
    return StereoConfig(base=base, levels=levels, n_res=n_res, neuron=args.neuron, activation=args.activation,
                        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, lam=args.lam,
                        grad_weight=args.grad_weight, seed=args.seed, **kw)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from spikes.models.stereospike.data import data_path, open_split

    torch.set_num_threads(max(1, min(2, args.threads)))
    if args.action == "eval":
        from spikes.models.stereospike.train import evaluate, load_checkpoint, write_json
        model, cfg, _ = load_checkpoint(args.checkpoint)
        data = open_split(args.data, args.split, args.cache_dir)
        result = evaluate(model, data, _fb(args, data), progress=True)
        result.update(checkpoint=str(args.checkpoint), split=args.split, data=str(args.data))
        if args.json:
            write_json(args.json, result)
        print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
        return 0

    train_data = open_split(args.data, "train", args.cache_dir, args.seed)
    val_data = open_split(args.data, "val", args.cache_dir, args.seed)
    test_data = open_split(args.data, "test", args.cache_dir, args.seed)
    fb = _fb(args, train_data)
    name = str(data_path(args.data, args.cache_dir, args.seed))
    if args.action == "train":
        from spikes.models.stereospike.report import train_and_evaluate
        from spikes.models.stereospike.train import mean_depth_baseline
        cfg = _config(args, model=args.model, beta=args.beta, fb=fb)
        result = train_and_evaluate(cfg, train_data, test_data, args.run_dir, val_data,
                                    progress=not args.no_progress, reuse=False)
        t = result["test"]
        baseline = mean_depth_baseline(train_data, test_data)
        print(f"{args.model} beta={args.beta:g} on {name}: test MDE {t['mde']:.4f} m "
              f"(mean-depth baseline {baseline:.4f} m), one-pixel accuracy {t['one_pixel_accuracy']:.3f}"
              + (f", mean firing rate {t['mean_firing_rate']:.3f}" if "mean_firing_rate" in t else "")
              + f"; checkpoint {args.run_dir / 'checkpoint.pt'}")
        return 0
    from spikes.models.stereospike.report import markdown, run_report
    report = run_report(args.run_dir, train_data, test_data, _config(args, fb=fb), tuple(args.betas),
                        args.activation, val_data, progress=not args.no_progress, data_name=name,
                        finetune_epochs=args.finetune_epochs)
    print(markdown(report))
    print(f"wrote {args.run_dir / 'report.json'}, report.md, report.png")
    return 0
