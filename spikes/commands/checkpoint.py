"""``spikes checkpoint``: inspect a checkpoint, or convert a first-release one to the current format."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spikes.training.checkpoint import CheckpointError, load_checkpoint, upgrade_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the model kind and arguments, rule, data and metrics")
    show.add_argument("path", type=Path)
    up = sub.add_parser("upgrade", help="convert a first-release checkpoint (train v1, stereo, e-prop stage, deploy)")
    up.add_argument("path", type=Path)
    up.add_argument("--out", type=Path, default=None, help="where to write (default: <name>.v2.pt beside it)")
    up.add_argument("--in-place", action="store_true", help="replace the old file (atomically)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "upgrade":
            out = upgrade_file(args.path, args.path if args.in_place else args.out)
            print(f"wrote {out}")
            return 0
        ckpt = load_checkpoint(args.path)
        info = {k: ckpt.get(k) for k in ("model", "rule", "position", "data", "metrics")}
        info["rule"] = {"name": (ckpt.get("rule") or {}).get("name")}
        print(json.dumps(info, indent=1, default=str))
        return 0
    except CheckpointError as exc:
        print(f"spikes checkpoint: {exc}", file=sys.stderr)
        return 2
