"""``spikes run``: run a checkpoint's network on a chip backend; print its task metric and per-layer activity."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from spikes.pipeline.checkpoints import deploy, open_checkpoint, random_samples, test_samples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a checkpoint.pt written by spikes train or spikes demo")
    parser.add_argument("--backend", choices=("sim", "lava-float", "lava-fixed", "sim-float"), default="sim")
    parser.add_argument("--samples", type=int, default=16,
                        help="run the first N samples of the checkpoint's own test split (default 16)")
    parser.add_argument("--random", action="store_true",
                        help="random input instead of test data (spikes with probability --rate; no metric)")
    parser.add_argument("--input", type=Path, default=None, help=".npy input in the deployer's layout instead")
    parser.add_argument("--labels", type=Path, default=None, help=".npy targets of --input (for the metric)")
    parser.add_argument("--steps", type=int, default=20, help="T of the random input")
    parser.add_argument("--rate", type=float, default=0.2, help="spike probability of the random input")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    try:
        loaded = open_checkpoint(args.checkpoint)
        if args.input is not None:
            x = np.load(args.input)
            y = np.load(args.labels) if args.labels is not None else None
        elif args.random:
            x, y = random_samples(loaded, args.steps, args.samples, args.rate, args.seed)
        else:
            x, y = test_samples(loaded, args.samples)
        t0 = time.perf_counter()
        result = deploy(loaded, x, y, (args.backend,), progress=False)[args.backend]
        elapsed = time.perf_counter() - t0
        for row in result.per_layer:
            rate, synops = row.get("firing_rate"), row.get("synops")
            rate_text = "-" if rate is None else f"{rate:.4f}"
            synops_text = "-" if synops is None else f"{synops:.4g}"
            print(f"{row['layer']:<16} firing rate {rate_text}  synops/sample {synops_text}")
        if y is not None and result.metric is not None:
            print(f"{loaded.kind.objective(loaded.checkpoint['model']['kwargs'], 0.0).metric_name} {result.metric:.4f} "
                  f"on {result.samples} samples")
        print(f"{args.backend}: {result.samples} samples in {elapsed:.2f} s")
        return 0
    except ValueError as exc:
        print(f"spikes run: {exc}", file=sys.stderr)
        return 2
