"""``spikes run``: run a checkpoint's network on a backend and report firing rates (and predictions)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "run"
HELP = "run a trained SNN checkpoint on sim, lava-fixed, lava-float (or torch) and print per-layer firing"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="deploy checkpoint or 'spikes train' checkpoint.pt")
    parser.add_argument("--backend", choices=("sim", "lava-float", "lava-fixed", "sim-float", "torch"), default="sim")
    parser.add_argument("--input", type=Path, default=None, help=".npy input (T, B, *shape); default: random spikes")
    parser.add_argument("--labels", type=Path, default=None, help=".npy labels (B,) to report the accuracy")
    parser.add_argument("--steps", type=int, default=20, help="T of the random input")
    parser.add_argument("--batch", type=int, default=4, help="B of the random input")
    parser.add_argument("--rate", type=float, default=0.2, help="spike probability of the random input")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-shape", default=None, help="per-sample input shape (train checkpoints)")


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from spikes.commands.export import parse_shape
    from spikes.deploy.backends import run as run_backend
    from spikes.deploy.checkpoint import load_model
    from spikes.deploy.classify import predict
    from spikes.graph import capture

    try:
        model, shape = load_model(args.checkpoint, parse_shape(args.input_shape))
        graph = capture(model, shape)
        if args.input is not None:
            x = np.load(args.input)
        else:
            x = (np.random.default_rng(args.seed).random((args.steps, args.batch, *shape)) < args.rate).astype(np.float32)
        t0 = time.perf_counter()
        out = run_backend(graph, x, args.backend, align=args.backend != "torch", states=False)
        elapsed = time.perf_counter() - t0
        for name, r in out.items():
            if not name.startswith("_"):
                print(f"{name:<16} firing rate {float(r['spikes'].mean()):.4f}")
        if "_overflow" in out:
            bad = {k: v for k, v in out["_overflow"].items() if any(v)}
            print("overflow (u wraps, v saturations):", bad or "none")
        pred = predict(graph, x, args.backend)
        print("predictions:", pred.tolist())
        if args.labels is not None:
            print(f"accuracy {float((pred == np.load(args.labels)).mean()):.4f}")
        print(f"{args.backend}: {x.shape[0]} steps x {x.shape[1]} samples in {elapsed:.2f} s")
        return 0
    except ValueError as exc:
        print(f"spikes run: {exc}", file=sys.stderr)
        return 2
