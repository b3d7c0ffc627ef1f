"""``spikes train``: train a spiking classifier from a config file and/or flags into a run directory."""
from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from pathlib import Path

HELP = "train a spiking classifier (config file and/or flags; checkpoints, --resume, metrics log)"


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig key (``--batch-size``...), default None so that only given flags override."""
    from spikes.training.config import TrainConfig
    group = parser.add_argument_group("config keys (override the file)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        meta, default = f.metadata, f.default if f.default is not MISSING else None
        extra = f" {{{', '.join(meta['choices'])}}}" if meta.get("choices") else ""
        helptext = f"{meta.get('help', '')}{extra} (default {default!r})"
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        else:
            group.add_argument(flag, dest=f.name, type=type(default), default=None, metavar=f.name.upper(), help=helptext)


def config_overrides(args: argparse.Namespace) -> dict:
    from spikes.training.config import FIELDS
    return {k: getattr(args, k) for k in FIELDS if getattr(args, k, None) is not None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="TOML or YAML file of config keys")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/train"),
                        help="run directory (config.toml, checkpoint.pt, metrics.jsonl, summary.json)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from RUN_DIR/checkpoint.pt (config from RUN_DIR/config.toml unless --config)")
    add_config_flags(parser)


def run(args: argparse.Namespace) -> int:
    from spikes.training.config import ConfigError, resolve_config
    config_path = args.config
    if config_path is None and args.resume and (args.run_dir / "config.toml").is_file():
        config_path = args.run_dir / "config.toml"
    try:
        config = resolve_config(config_path, config_overrides(args))
    except ConfigError as exc:
        print(f"spikes train: config error: {exc}", file=sys.stderr)
        return 2
    from spikes.training.loop import train
    try:
        summary = train(config, args.run_dir, resume=args.resume, log=lambda m: print(m, file=sys.stderr))
    except (ConfigError, FileExistsError) as exc:
        print(f"spikes train: {exc}", file=sys.stderr)
        return 2
    print(f"test accuracy {summary['test_accuracy']:.4f}  loss {summary['test_loss']:.4f}  "
          f"mean firing rate {summary['mean_firing_rate']:.4f}  steps {summary['steps']}  "
          f"wall {summary['wall_time_s']:.1f} s  -> {args.run_dir}")
    return 0
