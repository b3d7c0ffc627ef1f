"""``spikes train``: train any model with any learning rule on any data set, from a config file and/or flags.

Several processes: ``spikes train --nproc N ...`` starts N local processes with torch.distributed's elastic launcher
(what ``torchrun --standalone --nproc_per_node N`` does), or launch them yourself on one or more machines with
``torchrun --nproc_per_node N [--nnodes M --node_rank K --rdzv_endpoint HOST:PORT] -m spikes train ...``; every
process trains its share of each batch (:mod:`spikes.training.distributed`).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from spikes.models.registry import KINDS
from spikes.options import ConfigError
from spikes.learning.rule import RULES
from spikes.training.config import TrainOptions, describe_options, parse_overrides, resolve_config
from spikes.training.data import DATASETS
from spikes.training.distributed import init_from_env, shutdown
from spikes.training.loop import CONFIG_FILE, train

# first-release flags, each a key of one table (see spikes.training.config.LEGACY)
SHORT_FLAGS = {"neuron": str, "width": int, "readout": str, "gain": float, "n_time_bins": int, "train_limit": int,
               "test_limit": int}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="TOML or YAML file with [model] [rule] [data] [train]")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/train"),
                        help="run directory (config.toml, checkpoint.pt, metrics.jsonl, summary.json)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from RUN_DIR/checkpoint.pt (config from RUN_DIR/config.toml unless --config)")
    parser.add_argument("--model", default=None, help=f"model kind: one of {sorted(KINDS)}, or package.module:factory "
                                                      "for your own nn.Module (model.kind)")
    parser.add_argument("--rule", default=None, help=f"learning rule: one of {sorted(RULES)} (default: the model's)")
    parser.add_argument("--dataset", default=None, help=f"one of {list(DATASETS)}, stereo:PATH, or events:DIR (a folder of your own "
                                                        "recordings, one sub-folder per class) (data.dataset)")
    parser.add_argument("--data-root", default=None, help="where the dataset lies (data.root; nothing downloads)")
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                        help="any config key, e.g. --set model.n_rec=128 --set rule.feedback=random (repeatable)")
    parser.add_argument("--list-options", action="store_true", help="print every table's keys and defaults, then exit")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train data-parallel in N local processes (torch.distributed, gloo: the trainer runs "
                             "on the CPU; under torchrun leave it at 1: torchrun starts the processes)")
    group = parser.add_argument_group("[train] keys and first-release shortcuts (override the file)")
    for f in fields(TrainOptions):
        _flag(group, f.name, f.default if f.default is not MISSING else None, f.metadata)
    for name, typ in SHORT_FLAGS.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None, metavar=name.upper(),
                           help=f"shortcut for --set {'model' if name in ('neuron', 'width', 'readout', 'gain') else 'data'}"
                                f".{name}=...")


def _flag(group, name: str, default, meta) -> None:
    flag = "--" + name.replace("_", "-")
    extra = f" {{{', '.join(meta['choices'])}}}" if meta.get("choices") else ""
    helptext = f"{meta.get('help', '')}{extra} (default {default!r})"
    if isinstance(default, bool):
        group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=helptext)
    elif isinstance(default, tuple):
        group.add_argument(flag, dest=name, type=float, nargs="+", default=None, metavar="F", help=helptext)
    else:
        group.add_argument(flag, dest=name, type=type(default), default=None, metavar=name.upper(), help=helptext)


def flat_overrides(args: argparse.Namespace) -> dict:
    keys = [f.name for f in fields(TrainOptions)] + list(SHORT_FLAGS)
    flat = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.model is not None:
        flat["model"] = args.model
    if args.dataset is not None:
        flat["dataset"] = args.dataset
    return flat


def _rank_main(config, run_dir: Path, resume: bool) -> dict:
    """One process of ``--nproc N`` (started by the elastic launcher, which sets RANK, WORLD_SIZE, ...)."""
    init_from_env()
    done = False
    try:
        summary = train(config, run_dir, resume=resume, log=lambda m: print(m, file=sys.stderr))
        done = True
        return summary
    finally:
        shutdown(barrier=done)


class LaunchError(RuntimeError):
    """A rank of ``--nproc N`` failed."""


def launch(config, run_dir: Path, resume: bool, nproc: int) -> dict:
    """Train ``config`` in ``nproc`` local processes; rank 0's summary. A failed rank stops the others (the
    checkpoint of the last ``checkpoint_every`` step stays: continue with ``--resume``)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    launch_config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id="spikes-train",
                                 rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                                 start_method="spawn", monitor_interval=0.5)
    try:
        results = elastic_launch(launch_config, _rank_main)(config, run_dir, resume)
    except ChildFailedError as exc:
        failed = ", ".join(f"rank {rank} (exit code {f.exitcode})" for rank, f in sorted(exc.failures.items()))
        raise LaunchError(f"{failed} failed; the others were stopped. Continue from the last checkpoint with "
                           f"--resume --run-dir {run_dir}") from exc
    return results[0]


def run(args: argparse.Namespace) -> int:
    if args.list_options:
        print(describe_options())
        return 0
    if args.nproc < 1:
        print(f"spikes train: --nproc must be at least 1, got {args.nproc}", file=sys.stderr)
        return 2
    world = init_from_env()                 # under torchrun: join its process group
    if args.nproc > 1 and world.distributed:
        print(f"spikes train: --nproc {args.nproc} under torchrun (WORLD_SIZE={world.size}): torchrun already "
              "started the processes; leave --nproc out", file=sys.stderr)
        return 2
    config_path, trained = args.config, False
    if config_path is None and args.resume and (args.run_dir / CONFIG_FILE).is_file():
        config_path = args.run_dir / CONFIG_FILE
    try:
        tables = parse_overrides(args.set)
        if args.rule is not None:
            tables["rule"]["name"] = args.rule
        if args.data_root is not None:
            tables["data"]["root"] = args.data_root
        config = resolve_config(config_path, tables, flat_overrides(args))
        if args.nproc > 1:
            if not RULES[config.rule].data_parallel:
                raise ConfigError(f"rule.name {config.rule!r} cannot train on {args.nproc} processes: its updates "
                                  "are not gradients that averaging across processes reproduces (leave --nproc out)")
            summary = launch(config, args.run_dir, args.resume, args.nproc)
        else:
            summary = train(config, args.run_dir, resume=args.resume, log=lambda m: print(m, file=sys.stderr))
        trained = True
    except (ConfigError, FileExistsError, FileNotFoundError, LaunchError) as exc:
        print(f"spikes train: {exc}", file=sys.stderr)
        return 2
    finally:
        if world.distributed:
            shutdown(barrier=trained)
    if world.distributed and not world.main:      # rank 0 reports
        return 0
    metric = summary["metric_name"]
    rate = summary.get("mean_firing_rate") if summary.get("firing_rates") else None   # None: no spiking layer
    print(f"test {metric} {summary['test_metric']:.4f}" + (f"  mean firing rate {rate:.4f}" if rate is not None else "")
          + f"  steps {summary['steps']}  wall {summary['wall_time_s']:.1f} s  -> {args.run_dir}")
    return 0
