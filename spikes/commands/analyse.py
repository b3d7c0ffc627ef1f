"""``spikes analyse ACTION``: analyses of trained networks, one action each.

    spikes analyse pruning RUN_DIR            # spike-and-slab networks: prunable connections, sampled networks
    spikes analyse interference --out DIR     # task A then task B: forgetting, update cosines, fixed points

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
from spikes.pipeline.interference import InterferenceOptions, run_interference
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


def _interference_arguments(p: argparse.ArgumentParser) -> None:
    d = InterferenceOptions()
    p.add_argument("--out", required=True, metavar="DIR", help="sweep folder: a folder per (drive, seed) pair with "
                   "its A/ and B/ runs, and results.json, table.md, interference.png")
    p.add_argument("--model", default=d.model, help=f"recurrent model kind: rate_rnn or rsnn (default {d.model})")
    p.add_argument("--rule", default=d.rule, help="learning rule (default: the model's, bptt / eprop)")
    p.add_argument("--drives", type=float, nargs="+", default=list(d.drives), metavar="D",
                   help=f"task A's input drives in [0, 1] (default {' '.join(map(str, d.drives))})")
    p.add_argument("--drive-b", type=float, default=d.drive_b, help=f"task B's input drive (default {d.drive_b})")
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds), metavar="S", help="seeds (default 0 1 2)")
    p.add_argument("--n-rec", type=int, default=d.n_rec, help=f"recurrent units (default {d.n_rec})")
    p.add_argument("--epochs-a", type=int, default=d.epochs_a, help=f"epochs on task A (default {d.epochs_a})")
    p.add_argument("--epochs-b", type=int, default=d.epochs_b, help=f"epochs on task B (default {d.epochs_b})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    p.add_argument("--memory-spikes", type=int, default=None, help="Poisson inputs per task and sign (default: 10 "
                   "for rsnn, 0 = analog inputs otherwise)")
    p.add_argument("--snapshots", type=int, default=d.snapshots, help="weight snapshots while B learns (fixed-point "
                   f"tracking; default {d.snapshots})")
    p.add_argument("--fixed-point-starts", type=int, default=d.fixed_point_starts,
                   help=f"fixed-point finder starts per cue sign (default {d.fixed_point_starts})")
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="more settings of both runs (e.g. model.n_adaptive=32, data.train_limit=256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _interference(args: argparse.Namespace) -> int:
    spikes_in = args.memory_spikes if args.memory_spikes is not None else (10 if args.model == "rsnn" else 0)
    options = InterferenceOptions(model=args.model, rule=args.rule, drives=tuple(args.drives), drive_b=args.drive_b,
                                  seeds=tuple(args.seeds), n_rec=args.n_rec, epochs_a=args.epochs_a,
                                  epochs_b=args.epochs_b, lr=args.lr, memory_spikes=spikes_in,
                                  snapshots=args.snapshots, fixed_point_starts=args.fixed_point_starts,
                                  overrides=tuple(args.set))
    result = run_interference(args.out, options, progress=not args.no_progress)
    print((Path(args.out) / "table.md").read_text(), end="")
    print(f"wrote {args.out}/results.json, table.md, interference.png"
          f"{'' if result['checks']['met'] else ' (the bar is not met)'}")
    return 0


ACTIONS: dict[str, Action] = {
    "pruning": ("spike-and-slab network: prunable connections (pi near 1), accuracy after pruning them, networks "
                "sampled from the learned distribution (multisensory: psychometric curves)", _pruning_arguments,
                _pruning),
    "interference": ("task A then task B through the trainer: forgetting of A vs A's input drive, update cosines per "
                     "block, input vs recurrent drive, subspace angles, A's fixed points while B learns",
                     _interference_arguments, _interference),
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
