"""``spikes analyse ACTION``: analyses of trained networks, one action each.

    spikes analyse pruning RUN_DIR            # spike-and-slab networks: prunable connections, sampled networks

An action is one entry of :data:`ACTIONS`: ``name -> (help, add_arguments(parser), run(args) -> int)``; adding one
is a function pair and a line in the table. Bad input (a missing run folder, a model without what the analysis
needs) ends the command with its message and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

Action = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
ACTIONS: dict[str, Action] = {}


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
