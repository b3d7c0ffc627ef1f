"""The ``spikes`` command line: discovers the subcommands in ``spikes.commands``."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import spikes
import spikes.commands


def command_modules() -> dict:
    """Subcommand name -> module, for every module in ``spikes.commands`` (``run_cmd.py`` is ``run``)."""
    found = {}
    for info in sorted(pkgutil.iter_modules(spikes.commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"spikes.commands.{info.name}")
        found[getattr(module, "NAME", info.name)] = module
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikes", description=spikes.__doc__)
    parser.add_argument("--version", action="version", version=f"spikes {spikes.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in command_modules().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
