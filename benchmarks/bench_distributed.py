"""Data-parallel training throughput: samples/s of ``spikes train`` in 1 and 2 processes (gloo, CPU).

Each configuration is a real ``spikes train`` run (the command line, as a user runs it): 1 process with 1 thread,
1 process with 2 threads, and ``--nproc 2`` with 1 thread each. The rate is taken from ``metrics.jsonl`` over the
steps after ``--warmup`` (process start, data and the first steps' compilation excluded): samples / (time of the
last logged step - time of the warmup step). Network: ``mlp_snn`` (width ``--width``) on the ``synthetic`` set
(2x12x12 frames, ``--time-bins`` steps), global batch ``--batch-size``; the weights of every run are the same
(the test suite checks that), so only the speed differs.

    python benchmarks/bench_distributed.py [--steps 40] [--plot bench_distributed.png] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from spikes.io import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_TRAIN = 256


def run(nproc: int, threads: int, args, folder: Path) -> dict:
    run_dir = folder / f"p{nproc}t{threads}"
    epochs = -(-args.steps * args.batch_size // SYNTHETIC_TRAIN)       # the synthetic set has 256 training samples
    cmd = [sys.executable, "-m", "spikes", "train", "--dataset", "synthetic", "--model", "mlp_snn",
           "--width", str(args.width), "--n-time-bins", str(args.time_bins), "--batch-size", str(args.batch_size),
           "--set", "data.test_limit=32", "--epochs", str(epochs), "--max-steps", str(args.steps),
           "--threads", str(threads), "--checkpoint-every", "0", "--no-progress", "--run-dir", str(run_dir)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "SPIKES_DIST_BACKEND": "gloo"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    first = log[args.warmup - 1]
    last = log[-1]
    samples = (last["step"] - first["step"]) * args.batch_size
    return {"processes": nproc, "threads_each": threads, "steps_timed": last["step"] - first["step"],
            "samples_per_s": samples / (last["time_s"] - first["time_s"]),
            "final_loss": last["loss"]}


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{r['processes']} proc x {r['threads_each']} thr" for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(labels, [r["samples_per_s"] for r in rows], color=["#888", "#555", "#1f77b4"][:len(rows)])
    ax.set_ylabel("samples / s")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--time-bins", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="16 steps (make bench)")
    p.add_argument("--plot", type=Path, default=None, help="write a bar chart here (png)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if args.quick:
        args.steps = 16
    configs = [(1, 1), (1, 2), (2, 1)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nproc, threads in tqdm(configs, desc="bench_distributed", unit="run"):
            rows.append(run(nproc, threads, args, Path(tmp)))
    base = rows[0]["samples_per_s"]
    print(f"mlp_snn width {args.width}, T={args.time_bins}, global batch {args.batch_size}, "
          f"{rows[0]['steps_timed']} timed steps; load average {os.getloadavg()[0]:.1f}")
    print("| processes x threads | samples/s | vs 1x1 | final loss |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} x {r['threads_each']} | {r['samples_per_s']:.0f} | {r['samples_per_s'] / base:.2f}x "
              f"| {r['final_loss']:.6e} |")
    if args.json:
        atomic_write_json(args.json, {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows})
    if args.plot:
        plot(rows, args.plot, f"spikes train, mlp_snn w{args.width} T{args.time_bins} B{args.batch_size} (CPU, gloo), "
                              f"{time.strftime('%Y-%m-%d')}, load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
