"""``spikes analyse ACTION``: analyses of trained networks, one action each.

    spikes analyse pruning RUN_DIR            # spike-and-slab networks: prunable connections, sampled networks

An action is one entry of :data:`ACTIONS`: ``name -> (help, add_arguments(parser), run(args) -> int)``; adding one
is a function pair and a line in the table. Bad input (a missing run folder, a model without what the analysis
needs) ends the command with its message and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from spikes.io import atomic_write_bytes, atomic_write_json
from spikes.reports.plots import png
from spikes.reports.spike_slab import (format_pruning, format_psychometric, open_run, pruning_report, psychometric,
                                       psychometric_figure)

Action = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _pruning_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="run folder of a spike_slab_rnn (its checkpoint.pt), or a checkpoint")
    p.add_argument("--threshold", type=float, default=0.9, help="prunable: pi >= this (default 0.9)")
    p.add_argument("--samples", type=int, default=10, help="networks sampled from the distribution (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled networks (default 0)")
    p.add_argument("--out", metavar="DIR", help="write pruning.json (and, multisensory, psychometric.json/png) here")


def _pruning(args: argparse.Namespace) -> int:
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    model, kind, objective, test, _ = open_run(args.run)
    report = pruning_report(model, kind, objective, test, args.threshold, args.samples, args.seed)
    print(format_pruning(report))
    curves = psychometric(model, kind, objective, test) if hasattr(test, "modality") else None
    if curves is not None:
        print()
        print(format_psychometric(curves))
    if args.out:
        out = Path(args.out)
        atomic_write_json(out / "pruning.json", report)
        if curves is not None:
            atomic_write_json(out / "psychometric.json", curves)
            atomic_write_bytes(out / "psychometric.png", png(psychometric_figure(curves, str(args.run))))
        print(f"wrote {out}")
    return 0


ACTIONS: dict[str, Action] = {
    "pruning": ("spike-and-slab network: prunable connections (pi near 1), accuracy after pruning them, networks "
                "sampled from the learned distribution (multisensory: psychometric curves)", _pruning_arguments,
                _pruning),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (help_text, add, _) in ACTIONS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))


def run(args: argparse.Namespace) -> int:
    try:
        return int(ACTIONS[args.action][2](args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"spikes analyse {args.action}: error: {exc}", file=sys.stderr)
        return 2
