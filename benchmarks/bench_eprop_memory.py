"""Peak memory and time per sequence of e-prop vs BPTT on a recurrent SNN, for growing sequence length T.

Memory: the increase of the process's peak resident set size (``ru_maxrss``) over its RSS just before the
measured sequence, each (method, T) in a fresh subprocess (torch's CPU allocator bypasses tracemalloc).
Before the baseline the subprocess has built the data, the model and run both methods on 3 steps of a batch
of 1 (kernel and allocator warm-up). e-prop runs the learner step by step and keeps no outputs (only the loss
sum); BPTT runs ``model(x)`` and backpropagates through all T steps. One weight update per sequence.

    .venv/bin/python benchmarks/bench_eprop_memory.py [--lengths 100 1000 4000] [--batch 16] [--n-rec 100]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from spikes.io import atomic_write_json


def measure(method: str, T: int, batch: int, n_rec: int, n_in: int) -> dict:
    """Runs in the subprocess: one sequence of length T, returns peak RSS increase (MB) and seconds."""
    import resource
    import time

    import torch

    from spikes.learning.eprop import EProp, EPropConfig
    from spikes.learning.eprop_losses import SequenceCrossEntropy
    from spikes.models.rsnn import RSNN, RSNNConfig

    torch.set_num_threads(1)
    cfg = RSNNConfig(n_in=n_in, n_rec=n_rec, n_out=2, n_adaptive=n_rec // 2)
    model = RSNN(cfg, seed=0)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(T, batch, n_in, generator=g) < 0.02).float()
    mask = torch.zeros(T)
    mask[-max(1, T // 10):] = 1.0
    loss = SequenceCrossEntropy(torch.arange(batch) % 2, 2, T, mask)
    learner = EProp(model, EPropConfig(c_reg=1.0), optimizer=torch.optim.Adam(model.parameters(), lr=1e-3))
    opt = learner.optimizer

    def run_eprop(xs, ls):
        learner.begin(xs.shape[1])
        for t in range(xs.shape[0]):
            learner.step(xs[t], ls)
        learner.apply()

    def run_bptt(xs, ls):
        y, _ = model(xs)
        opt.zero_grad(set_to_none=True)
        ls.total(y).backward()
        opt.step()

    run = run_eprop if method == "eprop" else run_bptt
    small = SequenceCrossEntropy(torch.zeros(1, dtype=torch.long), 2, 3)
    run_eprop(x[:3, :1], small)
    run_bptt(x[:3, :1], small)

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    base = rss_mb()
    start = time.perf_counter()
    run(x, loss)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"method": method, "T": T, "peak_mb": max(0.0, peak - base), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="sequence lengths (default 100 1000 4000)")
    parser.add_argument("--quick", action="store_true", help="short sequences only (100 and 400), for make bench")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n-rec", type=int, default=100)
    parser.add_argument("--n-in", type=int, default=40)
    parser.add_argument("--json", default=None, help="write the rows here as JSON")
    parser.add_argument("--_child", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lengths is None:
        args.lengths = [100, 400] if args.quick else [100, 1000, 4000]
    if args._child:
        print(json.dumps(measure(args._child[0], int(args._child[1]), args.batch, args.n_rec, args.n_in)))
        return 0
    rows = []
    for method in ("eprop", "bptt"):
        for T in args.lengths:
            out = subprocess.run([sys.executable, __file__, "--_child", method, str(T), "--batch", str(args.batch),
                                  "--n-rec", str(args.n_rec), "--n-in", str(args.n_in)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{method:6s} T={T:5d}  peak +{rows[-1]['peak_mb']:8.1f} MB  {rows[-1]['seconds']:7.2f} s",
                  file=sys.stderr, flush=True)
    print(f"\nRSNN {args.n_in} in, {args.n_rec} rec ({args.n_rec // 2} ALIF), batch {args.batch}; peak RSS increase "
          "per sequence (fresh process each); time under shared-CPU load, 1 thread\n")
    print("| method | T | peak memory (MB) | time / sequence (s) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['T']} | {r['peak_mb']:.1f} | {r['seconds']:.2f} |")
    for method in ("eprop", "bptt"):
        mine = [r for r in rows if r["method"] == method]
        if len(mine) > 1 and mine[0]["peak_mb"] > 0:
            print(f"{method}: peak at T={mine[-1]['T']} / peak at T={mine[0]['T']} = "
                  f"{mine[-1]['peak_mb'] / mine[0]['peak_mb']:.2f}")
    if args.json:
        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
