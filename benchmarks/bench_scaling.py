"""Scaling sweeps of the training-step benchmarks (issue 21 item 1): ratios vs size, peak memory.

Each (sweep, size) runs in a fresh subprocess of this script (``--one``), so that its peak memory is the
child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` minus its value after imports (resident set, MB, Linux
KiB units; torch's allocator is invisible to tracemalloc). Sweeps (bench_training's cases built at each size,
``bench_training.CaseSize``; every other size as bench_training's defaults):

- ``a_T``: case (a), recurrent LIF N = 100, T = 100, 1000, 4000;
- ``a_N``: case (a) at T = 1000, hidden N = 100, 400, 1600;
- ``b_density``: case (b), input density 0.5 %, 2 %, 10 %, 30 %;
- ``c_channels``: case (c) at input 34, conv channels 16/32 and 64/128 (the size is the first conv's; the second
  has twice as many);
- ``c_size``: case (c) at channels 16/32, input side 34, 64, 128;
- ``onm``: the Open Neuromorphic harness of bench_gpu.py on the CPU, n = 512, 1024, 4096 (its code imported).

Sizes too large for this 2-core, 24 GB machine run with fewer samples or steps (``SHRINK``; the output and the
JSON say so): all libraries then run the same shrunk size, so the ratio stays a same-work comparison.

Same network (issue 21 item 5): before any ratio is printed, every sweep asserts that spikes, snntorch and norse
compute the same network: their first-step losses agree to 1e-4 relative with reset to zero in all three
(``bench_training.same_network``, float64; ``onm``: bench_gpu's own check, float32, zero reset). A failed check
ends the size's subprocess and the run. The timed steps of a/b/c keep each library's default settings, as
bench_training does (spikes' and snntorch's subtractive reset, snntorch's one step late, norse's reset to 0).

Usage: ``python benchmarks/bench_scaling.py [--quick] [--repeats N] [--only a_T,a_N,b_density,c_channels,c_size,onm]``;
``--quick``: the smallest size of each sweep, one repeat.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWEEPS = {"a_T": [100, 1000, 4000], "a_N": [100, 400, 1600], "b_density": [0.005, 0.02, 0.10, 0.30],
          "c_channels": [16, 64], "c_size": [34, 64, 128], "onm": [512, 1024, 4096]}
SWEPT = {"a_T": "T (case a, N 100)", "a_N": "hidden N (case a, T 1000)", "b_density": "input density (case b)",
         "c_channels": "conv channels c1 (c2 = 2 c1; case c, input 34)", "c_size": "input side (case c, channels 16/32)",
         "onm": "n (ONM, CPU)"}
# (sweep, size) -> the sizes changed from the case's defaults to fit this machine, and why
SHRINK: dict[tuple[str, float], tuple[dict, str]] = {
    ("c_channels", 64): (dict(batch=8), "B 8 (not 32): at B 32 the 128-channel activations, 1600 x 128 x 34 x 34, "
                                        "are 0.95 GB a tensor, ~20 GB for the three libraries"),
    ("c_size", 64): (dict(batch=8), "B 8 (not 32): the same pixels per time step as input 34 at B 32"),
    ("c_size", 128): (dict(batch=2), "B 2 (not 32): the same pixels per time step as input 34 at B 32"),
}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def case_size(sweep: str, size: float):
    """(case letter, bench_training.CaseSize, note) of one sweep point; note says what was shrunk ('' if nothing)."""
    import bench_training as bt

    case = sweep[0]
    base = bt.CASES[case]
    changes = {"a_T": lambda: dict(steps=int(size)), "a_N": lambda: dict(hidden=int(size)),
               "b_density": lambda: dict(density=float(size)),
               "c_channels": lambda: dict(channels=(int(size), 2 * int(size))),
               "c_size": lambda: dict(input_size=int(size))}
    if sweep not in changes:
        raise ValueError(f"sweep must be one of {sorted(SWEEPS)}, got {sweep!r}")
    shrink, note = SHRINK.get((sweep, size), ({}, ""))
    return case, dataclasses.replace(base, **changes[sweep](), **shrink), note


def run_one(sweep: str, size: float, repeats: int) -> dict:
    """One (sweep, size) in this process: median wall ms per library and peak RSS growth in MB; asserts that the
    libraries compute the same network before timing (AssertionError otherwise)."""
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
        return {"ms": ms, "rss_mb": _maxrss_mb() - base, "note": "",
                "checked": "same network: first losses equal to 1e-4 (bench_gpu, float32, zero reset)"}
    case, sizes, note = case_size(sweep, size)
    if note:
        print(f"  shrunk to fit: {note}", flush=True)
    ms = bt.run_case(case, repeats, ["spikes", "snntorch", "norse", "dense floor"], size=sizes, check=True)
    return {"ms": ms, "rss_mb": _maxrss_mb() - base, "note": note, "sizes": dataclasses.asdict(sizes),
            "checked": "same network: first losses equal to 1e-4 (float64, zero reset in all); timed at defaults"}


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
    sweeps = args.only.split(",")
    unknown = [s for s in sweeps if s not in SWEEPS]
    if unknown:
        ap.error(f"--only: unknown sweep(s) {unknown}; choose from {sorted(SWEEPS)}")
    print(f"load average {os.getloadavg()[0]:.1f} at start, {repeats} repeat(s); memory: ru_maxrss growth of a "
          f"fresh subprocess per size", flush=True)
    results = []
    for sweep in sweeps:
        for size in SWEEPS[sweep][:1] if args.quick else SWEEPS[sweep]:
            proc = subprocess.run([sys.executable, __file__, "--one", sweep, str(size), "--repeats", str(repeats)],
                                  capture_output=True, text=True)
            print(proc.stdout.replace("RESULT ", "  raw "), end="", flush=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{sweep} at {size} failed (exit {proc.returncode}): no ratio printed")
            res = json.loads(proc.stdout.rsplit("RESULT ", 1)[1])
            ms = res["ms"]
            ratios = {f"vs {p}": ms[p] / ms["spikes"] for p in ("snntorch", "norse") if p in ms}
            if "dense floor" in ms:
                ratios["spikes/floor"] = ms["spikes"] / ms["dense floor"]
            shrunk = f"   shrunk: {res['note']}" if res.get("note") else ""
            print(f"[{sweep} {size}] " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
                  + f"   peak RSS +{res['rss_mb']:.0f} MB   checked: {res['checked']}{shrunk}", flush=True)
            results.append({"sweep": sweep, "size": size, **res, "ratios": ratios,
                             "load_avg_1min": os.getloadavg()[0]})
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)
    if args.json:
        from spikes.io import atomic_write_json
        atomic_write_json(args.json, results)
    if args.figure:
        plot(results, args.figure)
    return 0


def plot(results: list[dict], path: str) -> None:
    """One panel per sweep: each ratio against the swept size, log x; a shrunk size's point is marked with its note's
    first words (e.g. 'B 8')."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from spikes.io import atomic_write

    sweeps = list(dict.fromkeys(r["sweep"] for r in results))
    cols = min(3, len(sweeps))
    rows_n = -(-len(sweeps) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.4 * cols, 3.4 * rows_n), squeeze=False)
    for ax in axes.flat[len(sweeps):]:
        ax.set_visible(False)
    for ax, sweep in zip(axes.flat, sweeps):
        rows = [r for r in results if r["sweep"] == sweep]
        for key in rows[0]["ratios"]:
            ax.plot([r["size"] for r in rows], [r["ratios"][key] for r in rows], "o-", label=key)
        for r in rows:
            if r.get("note"):
                ax.annotate(r["note"].split(" (")[0], (r["size"], max(r["ratios"].values())), fontsize=7,
                            textcoords="offset points", xytext=(0, 4), ha="center")
        ax.set_xscale("log")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xlabel(SWEPT.get(sweep, sweep))
        ax.set_ylabel("ratio (x)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


if __name__ == "__main__":
    raise SystemExit(main())
