"""``spikes demo``: the main job end to end on embedded data (:func:`spikes.pipeline.run_demo`).

Trains a conv SNN (surrogate gradients) and an e-prop ALIF network on the digits event set, small
StereoSpike models on the stereo set and a GT network on scikit-learn's wine; deploys each to Lava
(``sim`` and ``lava-fixed``); prints one comparison table (task metric in torch and on each backend,
per-layer firing rates, synaptic operations and a Loihi energy estimate per sample) and writes
``comparison.md`` and ``report.html`` (plots) into ``--out``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from spikes.energy import SOURCE
from spikes.pipeline.demo import STAGE_NAMES, run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"),
                        help="output directory: one run directory per model, comparison.md, report.html "
                             "(default %(default)s)")
    parser.add_argument("--stages", default=",".join(STAGE_NAMES),
                        help=f"comma-separated stages to run (default: all of {','.join(STAGE_NAMES)})")
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch: checks the plumbing only")
    parser.add_argument("--no-deploy", action="store_true", help="skip the chip backends (torch numbers only)")
    parser.add_argument("--lava-samples", type=int, default=None,
                        help="test samples run on lava-fixed (default: all; StereoSpike its first 10 frames, LAVA_FRAMES; quick 8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if args.lava_samples is not None and args.lava_samples < 1:
        print(f"spikes demo: --lava-samples must be >= 1, got {args.lava_samples}", file=sys.stderr)
        return 2
    print(f"spikes demo: stages {', '.join(stages)}{' (quick)' if args.quick else ''} -> {args.out}\n"
          "(the digits event set is simulated from scikit-learn's digits and cached on first use: ~30 s once)",
          flush=True)
    t0 = time.perf_counter()
    try:
        res = run_demo(args.out, quick=args.quick, stages=stages, progress=not args.no_progress,
                       deploy=not args.no_deploy, lava_samples=args.lava_samples,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    except ValueError as exc:
        print(f"spikes demo: {exc}", file=sys.stderr)
        return 2
    if not res.table:
        print("spikes demo: no stage produced results:", file=sys.stderr)
        for st in res.stages:
            print(f"  {st.name}: {st.status} {st.reason}", file=sys.stderr)
        return 1
    print("\n" + res.table + "\n")
    print("metric: accuracy (higher is better) or mean depth error in metres (lower is better); mean_rate: spikes "
          "per neuron per step; synops and energy_uj per sample.")
    print(f"energy: {SOURCE}.")
    for st in res.stages:
        for note in st.notes:
            print(f"note: {note}")
    failed = [st for st in res.stages if st.status != "ok"]
    for st in failed:
        print(f"stage {st.name}: {st.status}: {st.reason}", file=sys.stderr)
    print(f"\nwrote {res.out_dir / 'comparison.md'} and {res.report}; wall time {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0
