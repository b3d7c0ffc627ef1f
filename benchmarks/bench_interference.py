"""Issue 19 item 3 acceptance sweep: interference between the memory tasks A and B learned in sequence, over A's
input drive, on a rate RNN (BPTT; with fixed points) and on an ALIF RSNN trained by e-prop. Every run goes through
the one trainer (``spikes.pipeline.interference.run_interference``, what ``spikes analyse interference`` runs).

    python benchmarks/bench_interference.py [--part rate|rsnn|all] [--out runs/bench_interference] [--quick]

Prints each table and the bar's checks (forgetting rises monotonically as the drive falls over >= 4 settings;
Spearman(fixed-point rotation, forgetting) >= 0.8), with the load average; writes the sweeps under ``--out`` and the
figures to ``benchmarks/figures/bench_interference_<part>.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from spikes.io import atomic_write_json
from spikes.pipeline.interference import FIGURE_FILE, TABLE_FILE, InterferenceOptions, run_interference

FIGURES = Path(__file__).resolve().parent / "figures"
DRIVES = (0.0, 0.25, 0.5, 0.75, 1.0)
# rate: the defaults (64 tanh units learning W_rec and b, outputs read along the inputs, the other output silent;
# lr 3e-3, 10 + 10 epochs), 5 seeds
PARTS = {
    "rate": InterferenceOptions(model="rate_rnn", drives=DRIVES, seeds=(0, 1, 2, 3, 4), snapshots=4,
                                fixed_point_starts=32),
    "rsnn": InterferenceOptions(model="rsnn", rule="eprop", drives=DRIVES, seeds=(0, 1, 2), n_rec=32, lr=5e-3,
                                epochs_a=5, epochs_b=5, memory_spikes=10,
                                overrides=("model.n_adaptive=16", "rule.feedback=symmetric")),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="all", choices=("rate", "rsnn", "all"))
    ap.add_argument("--out", default="runs/bench_interference")
    ap.add_argument("--quick", action="store_true", help="3 drives, one seed, 2 epochs each (a smoke run)")
    args = ap.parse_args()
    out = Path(args.out + ("_quick" if args.quick else ""))
    results = {}
    for part in (("rate", "rsnn") if args.part == "all" else (args.part,)):
        options = PARTS[part]
        if args.quick:
            options = InterferenceOptions(**{**options.__dict__, "drives": (0.0, 0.5, 1.0), "seeds": (0,),
                                             "epochs_a": 2, "epochs_b": 2, "train_limit": 256})
        t0, load0 = time.perf_counter(), os.getloadavg()[0]
        res = run_interference(out / part, options, progress=True)
        wall, load1 = time.perf_counter() - t0, os.getloadavg()[0]
        print((out / part / TABLE_FILE).read_text())
        print(f"{part}: {wall:.0f} s, load average {load0:.1f} -> {load1:.1f}; bar met: {res['checks']['met']}")
        if not args.quick:
            FIGURES.mkdir(exist_ok=True)
            shutil.copyfile(out / part / FIGURE_FILE, FIGURES / f"bench_interference_{part}.png")
        results[part] = {"checks": res["checks"], "table": res["table"], "wall_s": wall, "load": [load0, load1]}
    atomic_write_json(out / "bench.json", results)
    print(json.dumps({k: v["checks"] for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
