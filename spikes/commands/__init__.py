"""Subcommands of the ``spikes`` CLI, one module each.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Its
top-level imports stay light (argparse, pathlib): heavy imports (torch, lava) go inside ``run``, so that
``spikes --help`` is fast and importing lava (which sets the multiprocessing start method) happens only
when a command needs it.
"""
