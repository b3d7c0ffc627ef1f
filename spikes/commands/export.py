"""``spikes export``: a checkpoint to NIR (HDF5) or to a quantised Loihi 2 / Lava network (npz + reports)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spikes.deploy.chipfit import LoihiLimits, chip_fit
from spikes.deploy.network import lower
from spikes.deploy.nir_io import write_nir
from spikes.deploy.quantize import format_report, quantize
from spikes.deploy.serialize import save_qnetwork
from spikes.pipeline.checkpoints import graph_of, open_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a checkpoint.pt written by spikes train or spikes demo")
    parser.add_argument("--to", choices=("nir", "lava"), required=True, help="target format")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: beside the checkpoint)")
    parser.add_argument("--dt", type=float, default=None,
                        help="NIR time step (s) for the tau mapping (default 1e-3; a --nir-for reader fixes its own)")
    parser.add_argument("--nir-for", choices=("nir", "snntorch", "norse"), default="nir",
                        help="the NIR reader: spikes' own (default), or snntorch's import_from_nir / norse's "
                             "from_nir (the graph written so that it runs there as here; layers it cannot run are "
                             "refused by name)")
    parser.add_argument("--chips", type=int, default=1,
                        help="Loihi 2 chips the chip-fit report budgets (default 1; e.g. 8 for a Kapoho Point board)")
    parser.add_argument("--require-fit", action="store_true",
                        help="exit 1 without writing when the network does not fit the budget (default: a network "
                             "that is only too big is written, with a warning: it runs in Lava's simulation and sim)")


def run(args: argparse.Namespace) -> int:
    try:
        loaded = open_checkpoint(args.checkpoint)
        graph = graph_of(loaded)
        if args.to == "nir":
            out = args.out or args.checkpoint.with_suffix(".nir")
            write_nir(graph, out, dt=args.dt, dialect=args.nir_for)
            reader = "" if args.nir_for == "nir" else f" for {args.nir_for}"
            print(f"wrote {out}{reader} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)")
            return 0
        if args.chips < 1:
            raise ValueError(f"--chips must be >= 1, got {args.chips}")
        net = lower(graph)
        fit = chip_fit(net, LoihiLimits(max_chips=args.chips))
        print(fit.format())
        too_big = not fit.ok and set(fit.problems) == set(fit.capacity)
        if not fit.ok and (args.require_fit or not too_big):
            return 1
        if too_big:
            print(f"warning: it needs {fit.chips} Loihi 2 chips (budget --chips {args.chips}); writing it anyway: it "
                  f"runs in Lava's simulation and on sim, and on hardware it needs a {fit.chips}-chip system",
                  file=sys.stderr)
        q = quantize(net)
        print(format_report(q.report))
        out = args.out or args.checkpoint.with_suffix(".lava.npz")
        save_qnetwork(q, out)
        print(f"wrote {out}")
        return 0
    except ValueError as exc:
        print(f"spikes export: {exc}", file=sys.stderr)
        return 2
