"""The ``spikes`` command line: the subcommands of ``spikes.commands.COMMANDS``, each module imported on use."""
from __future__ import annotations

import argparse
import importlib
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
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
