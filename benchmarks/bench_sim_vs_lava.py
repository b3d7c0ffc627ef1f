"""Throughput of ``sim`` (our batched bit-exact simulator) vs ``lava-fixed`` (Lava's CPU simulation) on the
same graphs, in samples x steps per second, and their ratio.

Graphs: ``dense`` 100 -> 10,000 LIF -> 100 LIF; ``conv`` 2x64x64 -> conv3x3 -> 8x64x64 LIF -> sum-pool 8x8 ->
flatten -> 10 LIF (readout). Inputs are Bernoulli spikes (rate 0.1 dense, 0.05 conv). Lava runs one sample
(its processes have no batch axis; ``spikes.deploy.pack`` packs a batch into one graph, not timed here); its rate is given for the steady state (after the first chunk, which includes
compilation and start-up) and for the whole call. sim runs a batch (``--batch``) and is timed over the
whole ``simulate`` call (input check included; the median of ``--repeats`` calls after one warm-up call
that compiles the numba kernels). Inputs are passed as uint8 spikes (sim accepts any integer dtype; float64
costs an 8x larger array to scan). The spikes of the Lava sample are checked against sim's (bit-exact).
Figures on a loaded machine are noisy: compare within one run. sim is compute-bound and Lava mostly waits
on its processes' barriers, so other jobs slow sim more: each line also gives sim's rate per CPU-second
(process time over the same calls, all threads) and the 1-minute load average.

    .venv/bin/python benchmarks/bench_sim_vs_lava.py [--steps 50] [--batch 32] [--graphs dense,conv] [--quick]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import torch


def dense_graph(seed: int = 0):
    from spikes.graph import Affine, Graph, Input, Neurons, Output
    from spikes.neurons.dynamics import NeuronParameters

    rng = np.random.default_rng(seed)
    p = NeuronParameters(alpha=0.9, alpha_syn=0.5, v_th=1.0, reset="zero")
    nodes = {"input": Input((100,)), "fc1": Affine(rng.normal(0, 0.1, (10_000, 100))),
             "hidden": Neurons((10_000,), p), "fc2": Affine(rng.normal(0, 0.1, (100, 10_000))),
             "out": Neurons((100,), p), "output": Output((100,))}
    edges = [("input", "fc1"), ("fc1", "hidden"), ("hidden", "fc2"), ("fc2", "out"), ("out", "output")]
    return Graph(nodes, edges), (100,), 0.1


def conv_graph(seed: int = 0):
    from spikes.graph import Affine, Conv2d, Flatten, Graph, Input, Neurons, Output, SumPool2d
    from spikes.neurons.dynamics import NeuronParameters

    rng = np.random.default_rng(seed)
    p = NeuronParameters(alpha=0.9, v_th=1.0, reset="zero")
    pool = SumPool2d((8, 64, 64), 8)
    nodes = {"input": Input((2, 64, 64)), "conv": Conv2d(rng.normal(0, 1.2, (8, 2, 3, 3)), (2, 64, 64), padding=1),
             "hidden": Neurons((8, 64, 64), p), "pool": pool, "flat": Flatten(pool.output_shape),
             "fc": Affine(rng.normal(0, 0.3, (10, 512))), "out": Neurons((10,), p), "output": Output((10,))}
    edges = [("input", "conv"), ("conv", "hidden"), ("hidden", "pool"), ("pool", "flat"), ("flat", "fc"),
             ("fc", "out"), ("out", "output")]
    return Graph(nodes, edges), (2, 64, 64), 0.05


def bench(name: str, steps: int, batch: int, repeats: int = 5) -> dict:
    from spikes.deploy.lava_backend import run_lava
    from spikes.deploy.network import lower
    from spikes.deploy.quantize import quantize
    from spikes.deploy.sim import simulate

    graph, shape, rate = {"dense": dense_graph, "conv": conv_graph}[name]()
    q = quantize(lower(graph))
    rng = np.random.default_rng(1)
    x = (rng.random((steps, batch, *shape)) < rate).astype(np.uint8)
    simulate(q, {"input": x[:, :1]})                                  # compile the kernels
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        sim = simulate(q, {"input": x})
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t_sim = float(np.median(times))
    timings: dict = {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lava = run_lava([(q, {"input": x[:, 0]})], fixed=True, states=False, buffer=max(1, steps // 5),
                        timings=timings)[0]
    t_lava = time.perf_counter() - t0
    exact = all(np.array_equal(sim[p]["spikes"][:, 0], lava[p]["spikes"]) for p in q.populations)
    sim_rate = batch * steps / t_sim
    lava_steady = timings["rest_steps"] / timings["rest"]
    lava_total = steps / t_lava
    rates = {p: float(sim[p]["spikes"].mean()) for p in q.populations}
    return {"graph": name, "sim": sim_rate, "sim_cpu": batch * steps / float(np.median(cpu)),
            "lava_steady": lava_steady, "lava_total": lava_total,
            "ratio_steady": sim_rate / lava_steady, "ratio_total": sim_rate / lava_total, "bit_exact": exact,
            "rates": rates}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--graphs", default="dense,conv")
    ap.add_argument("--repeats", type=int, default=5, help="sim calls timed (median)")
    ap.add_argument("--quick", action="store_true", help="a short run (20 steps, batch 8, 3 repeats) for make bench")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.batch, args.repeats = 20, 8, 3
    torch.set_num_threads(2)
    for name in args.graphs.split(","):
        r = bench(name, args.steps, args.batch, args.repeats)
        print(f"{r['graph']:>5}: sim {r['sim']:,.0f} sample-steps/s (batch {args.batch}, {args.steps} steps) | lava-fixed {r['lava_steady']:,.1f} steady, "
              f"{r['lava_total']:,.1f} incl. compile | sim/lava {r['ratio_steady']:,.0f}x steady, "
              f"{r['ratio_total']:,.0f}x incl. compile | bit-exact {r['bit_exact']} | firing "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["rates"].items())
              + f" | sim {r['sim_cpu']:,.0f} per CPU-second, load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
