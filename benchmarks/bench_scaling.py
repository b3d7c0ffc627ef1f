"""Scaling sweeps of the training-step benchmarks (issue 21 item 1, partial): ratios vs size, peak memory.

Each (sweep, size) runs in a fresh subprocess of this script (``--one``), so that its peak memory is the
child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` minus its value after imports (resident set, MB, Linux
KiB units; torch's allocator is invisible to tracemalloc). Sweeps:

- ``a_T``: bench_training case (a), recurrent LIF N = 100, T = 100, 1000, 4000 (the builders fix N = 100; the
  N sweep needs them to take sizes, not done yet);
- ``b_density``: case (b), input density 0.5 %, 2 %, 10 %, 30 %;
- ``onm``: the Open Neuromorphic harness of bench_gpu.py on the CPU, n = 512, 1024, 4096 (its code imported;
  it asserts the first losses of spikes, snntorch and norse agree to 1e-4 with zero reset before timing).

Cases a and b time each library's default settings, as bench_training does (snntorch's delayed subtractive
reset, norse's reset to 0): their losses are printed, not asserted equal (item 5 is checked only in ``onm``).

Usage: ``python benchmarks/bench_scaling.py [--quick] [--repeats N] [--only a_T,b_density,onm]``;
``--quick``: the smallest size of each sweep, one repeat.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWEEPS = {"a_T": [100, 1000, 4000], "b_density": [0.005, 0.02, 0.10, 0.30], "onm": [512, 1024, 4096]}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(sweep: str, size: float, repeats: int) -> dict:
    """One (sweep, size) in this process: median wall ms per library and peak RSS growth in MB."""
    sys.path.insert(0, str(HERE))
    import torch
    import bench_training as bt
    import bench_gpu as bg

    torch.set_num_threads(2)
    base = _maxrss_mb()
    if sweep == "onm":
        args = argparse.Namespace(steps=500, batch=16, repeats=repeats, libs="spikes,snntorch,norse",
                                  no_compile=False, norse_mode="default")
        ms = bg.bench_size(int(size), args, torch.device("cpu"))
        return {"ms": ms, "rss_mb": _maxrss_mb() - base, "checked": "first losses equal to 1e-4, zero reset"}
    case = sweep[0]
    cfg = dict(bt.CASES[case])
    if sweep == "a_T":
        cfg["shape"] = (int(size),) + tuple(cfg["shape"][1:])
    else:
        cfg["density"] = float(size)
    saved = bt.CASES[case]
    bt.CASES[case] = cfg
    try:
        ms = bt.run_case(case, repeats, ["spikes", "snntorch", "norse", "dense floor"])
    finally:
        bt.CASES[case] = saved
    return {"ms": ms, "rss_mb": _maxrss_mb() - base, "checked": "none (default settings; losses printed)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smallest size of each sweep, one repeat")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--only", default=",".join(SWEEPS))
    ap.add_argument("--one", nargs=2, metavar=("SWEEP", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--figure", default=None, help="draw ratio vs size per sweep (log x) into this PNG")
    ap.add_argument("--from-json", action="append", default=[], help="draw the figure from earlier results only")
    args = ap.parse_args(argv)
    if args.from_json:
        results = [r for path in args.from_json for r in json.loads(Path(path).read_text())]
        plot(results, args.figure or str(HERE / "figures" / "scaling.png"))
        return 0
    repeats = 1 if args.quick else args.repeats
    if args.one:
        result = run_one(args.one[0], float(args.one[1]), repeats)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    print(f"load average {os.getloadavg()[0]:.1f} at start, {repeats} repeat(s); memory: ru_maxrss growth of a "
          f"fresh subprocess per size", flush=True)
    results = []
    for sweep in args.only.split(","):
        for size in SWEEPS[sweep][:1] if args.quick else SWEEPS[sweep]:
            proc = subprocess.run([sys.executable, __file__, "--one", sweep, str(size), "--repeats", str(repeats)],
                                  capture_output=True, text=True)
            print(proc.stdout.replace("RESULT ", "  raw "), end="", flush=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{sweep} at {size} failed (exit {proc.returncode})")
            res = json.loads(proc.stdout.rsplit("RESULT ", 1)[1])
            ms = res["ms"]
            ratios = {f"vs {p}": ms[p] / ms["spikes"] for p in ("snntorch", "norse") if p in ms}
            if "dense floor" in ms:
                ratios["spikes/floor"] = ms["spikes"] / ms["dense floor"]
            print(f"[{sweep} {size}] " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
                  + f"   peak RSS +{res['rss_mb']:.0f} MB   checked: {res['checked']}", flush=True)
            results.append({"sweep": sweep, "size": size, **res, "ratios": ratios})
    if args.json:
        from spikes.io import atomic_write_json
        atomic_write_json(args.json, results)
    if args.figure:
        plot(results, args.figure)
    return 0


def plot(results: list[dict], path: str) -> None:
    """One panel per sweep: each ratio against the swept size, log x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from spikes.io import atomic_write

    sweeps = list(dict.fromkeys(r["sweep"] for r in results))
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.2 * len(sweeps), 3.4), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        rows = [r for r in results if r["sweep"] == sweep]
        for key in rows[0]["ratios"]:
            ax.plot([r["size"] for r in rows], [r["ratios"][key] for r in rows], "o-", label=key)
        ax.set_xscale("log")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xlabel({"a_T": "T (case a, N 100)", "b_density": "input density (case b)", "onm": "n (ONM, CPU)"}[sweep])
        ax.set_ylabel("ratio (x)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


if __name__ == "__main__":
    raise SystemExit(main())
