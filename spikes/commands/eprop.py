"""``spikes eprop cue``: train recurrent SNNs on e-prop's evidence-accumulation task, e-prop vs BPTT.

Example (the shortened task, dt = 10 ms, T = 225 steps)::

    spikes eprop cue --rules eprop-symmetric,eprop-random,eprop-adaptive,bptt --neurons alif,lif \\
        --dt 10 --iterations 200 --out eprop_cue.json
"""
from __future__ import annotations

import argparse

from spikes.io import atomic_write_json

HELP = "Train LIF/ALIF recurrent SNNs with e-prop (symmetric/random/adaptive) or BPTT on the cue task"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=["cue", "digits"],
                        help="cue: evidence accumulation; digits: the embedded digits event set (--neurons, "
                             "--iterations = epochs, --dt ignored: 20 bins of 15 ms)")
    parser.add_argument("--rules", default="eprop-symmetric",
                        help="comma-separated: eprop-symmetric, eprop-random, eprop-adaptive, bptt")
    parser.add_argument("--neurons", default="alif", help="comma-separated: alif (50 LIF + 50 ALIF), lif (100 LIF)")
    parser.add_argument("--dt", type=float, default=1.0, help="step in ms (1 = paper, T = 2250 steps)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--c-reg", type=float, default=1.0, help="firing-rate regulariser weight (target 10 Hz)")
    parser.add_argument("--weight-decay", type=float, default=1e-2, help="adaptive feedback decay (x lr)")
    parser.add_argument("--test-batch", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a loaded machine: e-prop's ops are small)")
    parser.add_argument("--out", default=None, help="write the results as JSON here (atomically)")


def run(args: argparse.Namespace) -> int:
    import torch

    from spikes.learning.eprop_train import RULES, train_cue, train_digits

    torch.set_num_threads(max(1, args.threads))
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    neurons = [n.strip() for n in args.neurons.split(",") if n.strip()]
    for r in rules:
        if r not in RULES:
            raise SystemExit(f"--rules: unknown rule {r!r}; choose from {', '.join(RULES)}")
    for n in neurons:
        if n not in ("alif", "lif"):
            raise SystemExit(f"--neurons: unknown kind {n!r}; choose alif or lif")
    results = []
    for n in neurons:
        for r in rules:
            if args.task == "digits":
                log = train_digits(r, n_adaptive=50 if n == "alif" else 0, epochs=args.iterations,
                                   batch=args.batch, lr=args.lr, c_reg=args.c_reg,
                                   weight_decay=args.weight_decay, seed=args.seed)
            else:
                log = train_cue(r, n_adaptive=50 if n == "alif" else 0, dt=args.dt, iterations=args.iterations,
                                batch=args.batch, lr=args.lr, c_reg=args.c_reg, weight_decay=args.weight_decay,
                                test_batch=args.test_batch, seed=args.seed)
            last = log.error[-20:]
            results.append({"task": args.task, "neurons": n, "rule": r, "dt_ms": args.dt, "iterations": args.iterations,
                             "batch": args.batch, "test_error": log.test_error,
                             "train_error_last20": sum(last) / len(last), "final_rate_hz": log.rate_hz[-1],
                             "seconds": log.seconds, "loss": log.loss, "error": log.error})
            print(f"{n:5s} {r:16s} test error {100 * log.test_error:5.1f} %  "
                  f"(train, last 20 it. {100 * results[-1]['train_error_last20']:5.1f} %)  "
                  f"{log.seconds:7.1f} s", flush=True)
            if args.out:
                atomic_write_json(args.out, results)
    print("\n| neurons | rule | test error |\n|---|---|---|")
    for res in results:
        print(f"| {res['neurons']} | {res['rule']} | {100 * res['test_error']:.1f} % |")
    return 0
