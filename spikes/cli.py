"""The ``spikes`` command line: the subcommands of ``spikes.commands.COMMANDS``, each module imported on use.

Bad input (a config key, a data path, a checkpoint, a model factory) ends a command with its message on stderr and
exit status 2; ``SPIKES_DEBUG=1`` shows the traceback instead. The current folder is importable, as with
``python -m``, so ``--model mynets:mlp`` finds ``./mynets.py``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

import spikes
from spikes.commands import COMMANDS


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (for its arguments), the others are listed by name."""
    parser = argparse.ArgumentParser(prog="spikes", description=spikes.__doc__)
    parser.add_argument("--version", action="version", version=f"spikes {spikes.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            # a plugin-style load of the one command asked for: the others' imports (torch, deploy) are not paid
            module = importlib.import_module(f"spikes.commands.{module_name}")
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:   # config, data, checkpoint, model errors
        if os.environ.get("SPIKES_DEBUG", "") not in ("", "0"):
            raise
        print(f"spikes {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
