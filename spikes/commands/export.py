"""``spikes export``: a checkpoint to NIR (HDF5) or to a quantised Loihi 2 / Lava network (npz + reports)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "export a trained SNN checkpoint to NIR or to a quantised Lava/Loihi 2 network (with chip-fit report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="deploy checkpoint or 'spikes train' checkpoint.pt")
    parser.add_argument("--to", choices=("nir", "lava"), required=True, help="target format")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: beside the checkpoint)")
    parser.add_argument("--input-shape", default=None, help="per-sample input shape, e.g. 2,34,34 (train checkpoints)")
    parser.add_argument("--dt", type=float, default=1e-3, help="NIR time step (s) for the tau mapping")


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise SystemExit(f"--input-shape must be comma-separated integers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from spikes.deploy.checkpoint import load_model
    from spikes.graph import capture

    try:
        model, shape = load_model(args.checkpoint, parse_shape(args.input_shape))
        graph = capture(model, shape)
        if args.to == "nir":
            from spikes.deploy.nir_io import write_nir

            out = args.out or args.checkpoint.with_suffix(".nir")
            write_nir(graph, out, dt=args.dt)
            print(f"wrote {out} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)")
            return 0
        from spikes.deploy.chipfit import chip_fit
        from spikes.deploy.network import lower
        from spikes.deploy.quantize import format_report, quantize
        from spikes.deploy.serialize import save_qnetwork

        net = lower(graph)
        fit = chip_fit(net)
        print(fit.format())
        if not fit.ok:
            return 1
        q = quantize(net)
        print(format_report(q.report))
        out = args.out or args.checkpoint.with_suffix(".lava.npz")
        save_qnetwork(q, out)
        print(f"wrote {out}")
        return 0
    except ValueError as exc:
        print(f"spikes export: {exc}", file=sys.stderr)
        return 2
