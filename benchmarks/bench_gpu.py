"""The Open Neuromorphic library benchmark on spikes' GPU path (Triton kernels) against snntorch and norse.

The harness of the Open Neuromorphic blog post "Spiking Neural Network (SNN) Library Benchmarks"
(open-neuromorphic.github.io, ``content/blog/spiking-neural-network-framework-benchmarking/docker/run_benchmark.py``):
one ``Linear(n, n)`` and one LIF layer, input ``randn(T=500, B=16, n)``, fp32, ``loss = spikes.sum()``, one
forward + backward timed, at n = 4096, 8192, 16384. Published forward + backward seconds (its ``data.csv``, RTX
4090): norse 1.0 + torch.compile 0.013 / 0.039 / 0.110, snnTorch 0.7 0.27 / 0.84 / 3.08, SpikingJelly CuPy
0.010 / 0.041 / 0.118. Its norse entry runs ``LIFBoxCell`` once on the whole (T, B, n) tensor, i.e. one step over
T*B rows rather than a recurrence over T: here norse steps through time, so that it computes the same network.

The same network in every library (checked: the first losses must agree to 1e-4 relative before any ratio is
printed): ``v = alpha v + W x[t] + b``, ``s = H(v - 1)``, reset to zero, alpha = 0.95, the same weights.
spikes: one GEMM over the whole sequence, then ``LIF`` (on CUDA the Triton kernel of
``spikes.kernels.triton_neuron``, on the CPU the numba one). snntorch: the harness's loop, ``fc`` and
``Leaky(reset_mechanism="zero")`` per step (its default delayed reset zeroes the membrane at the next step, as
spikes' zero reset does). norse: ``LIFBoxCell`` (forward Euler ``v += k (-v + I)``; its weights are scaled by
1/k, k = 1 - alpha, so that it computes ``v = alpha v + I``, and it resets to 0) with ``fc``, one step compiled
by ``torch.compile`` (``--norse-mode``, default "default"), stepped in Python. The harness used "reduce-overhead"
(CUDA graphs) on a model called once per pass; stepping 500 times in one autograd graph, CUDA graphs recycle a
step's outputs at the next step while backward still needs them, so that mode is opt-in here (untried: no GPU).
Median of ``--repeats`` timed calls after one warm-up, the libraries taking turns; peak CUDA memory of the
warm-up call.

Usage: ``python benchmarks/bench_gpu.py`` (CUDA, n = 4096, 8192, 16384) or, on a machine without a GPU,
``python benchmarks/bench_gpu.py --device cpu --sizes 256``; ``--quick``: n = 4096 on CUDA, n = 256 and T = 100 on
the CPU, one repeat.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from spikes.neurons import LIF
from spikes.neurons.sequence import fast_path_unsupported

ALPHA = 0.95
LOSS_RTOL = 1e-4
PUBLISHED_S = {  # Open Neuromorphic data.csv, forward + backward seconds, RTX 4090
    "norse": {4096: 0.0131, 8192: 0.0389, 16384: 0.1095},
    "snntorch": {4096: 0.2655, 8192: 0.8364, 16384: 3.0782},
    "SpikingJelly CuPy": {4096: 0.0100, 8192: 0.0414, 16384: 0.1182},
}


def spikes_run(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> tuple[nn.Module, Callable[[], torch.Tensor]]:
    fc = nn.Linear(w.shape[1], w.shape[0]).to(x.device)
    _copy(fc, w, b)
    lif = LIF(ALPHA, reset="zero")
    reason = fast_path_unsupported(x, lif.params)
    if reason:
        print(f"  spikes runs the reference loop: {reason}")
    return fc, lambda: lif(fc(x)).sum()


def snntorch_run(w, b, x):
    import snntorch

    fc = nn.Linear(w.shape[1], w.shape[0]).to(x.device)
    _copy(fc, w, b)
    lif = snntorch.Leaky(beta=ALPHA, threshold=1.0, reset_mechanism="zero").to(x.device)

    def run() -> torch.Tensor:
        mem = lif.init_leaky()
        out = []
        for x_t in x:
            spk, mem = lif(fc(x_t), mem)
            out.append(spk)
        return torch.stack(out).sum()
    return fc, run


def norse_run(w, b, x, compile_step: bool = True, mode: str = "default"):
    import norse.torch as norse
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState

    k, dt = 1.0 - ALPHA, 1e-3
    fc = nn.Linear(w.shape[1], w.shape[0]).to(x.device)
    _copy(fc, w / k, b / k)
    cell = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(k / dt, device=x.device),
                                                   v_th=torch.as_tensor(1.0, device=x.device)), dt=dt)

    def step(x_t, state):
        return cell(fc(x_t), state)
    if compile_step:
        step = torch.compile(step, mode=mode)
    graphs = compile_step and mode == "reduce-overhead" and x.is_cuda

    def run() -> torch.Tensor:
        state = LIFBoxFeedForwardState(v=torch.zeros(x.shape[1], w.shape[0], device=x.device))
        out = []
        for x_t in x:
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
            z, state = step(x_t, state)
            out.append(z.clone() if graphs else z)  # CUDA-graph outputs are overwritten
        return torch.stack(out).sum()
    return fc, run


def _copy(fc: nn.Linear, w: torch.Tensor, b: torch.Tensor) -> None:
    with torch.no_grad():
        fc.weight.copy_(w)
        fc.bias.copy_(b)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_backward(model: nn.Module, run: Callable[[], torch.Tensor], device) -> Callable[[], float]:
    def call() -> float:
        for p in model.parameters():
            p.grad = None
        loss = run()
        loss.backward()
        _sync(device)
        return float(loss.detach())
    return call


def bench_size(n: int, args, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    x = torch.randn(args.steps, args.batch, n, device=device)
    ref = nn.Linear(n, n)  # nn.Linear's default initialisation, as the harness
    w, b = ref.weight.detach().to(device), ref.bias.detach().to(device)
    builders = {"spikes": lambda: spikes_run(w, b, x), "snntorch": lambda: snntorch_run(w, b, x),
                "norse": lambda: norse_run(w, b, x, not args.no_compile, args.norse_mode)}
    calls, losses, memory = {}, {}, {}
    print(f"\nn = {n}: input ({args.steps}, {args.batch}, {n}) on {device}", flush=True)
    for lib in args.libs.split(","):
        try:
            model, run = builders[lib]()
        except ImportError as exc:
            print(f"  {lib:9s} skipped ({exc})")
            continue
        calls[lib] = forward_backward(model, run, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        losses[lib] = calls[lib]()  # warm-up: compilation, allocator
        memory[lib] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
        print(f"  {lib:9s} warm-up {time.perf_counter() - t0:7.1f} s   first loss {losses[lib]:.1f}", flush=True)
    if "spikes" in losses:
        for lib, loss in losses.items():
            rel = abs(loss - losses["spikes"]) / max(abs(losses["spikes"]), 1.0)
            assert rel <= LOSS_RTOL, (f"n = {n}: {lib}'s first loss {loss} differs from spikes' {losses['spikes']} by "
                                      f"{rel:.2e} relative (> {LOSS_RTOL}): not the same network")
    times: dict[str, list[float]] = {lib: [] for lib in calls}
    for _ in range(args.repeats):
        for lib, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[lib].append(time.perf_counter() - t0)
    ms = {lib: statistics.median(t) * 1e3 for lib, t in times.items()}
    for lib in calls:
        published = PUBLISHED_S.get(lib, {}).get(n)
        quote = f"   (published, RTX 4090: {published * 1e3:.0f} ms)" if published and device.type == "cuda" else ""
        mem = f"   peak {memory[lib]:.2f} GiB" if device.type == "cuda" else ""
        print(f"  {lib:9s} {ms[lib]:10.1f} ms per forward + backward{mem}{quote}")
    if "spikes" in ms:
        for lib in ("snntorch", "norse"):
            if lib in ms:
                print(f"  speed-up vs {lib}: {ms[lib] / ms['spikes']:.2f}x")
    return ms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", default="4096,8192,16384", help="comma-separated n")
    ap.add_argument("--steps", type=int, default=500, help="time steps T (the harness: 500)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--libs", default="spikes,snntorch,norse")
    ap.add_argument("--no-compile", action="store_true", help="norse without torch.compile")
    ap.add_argument("--norse-mode", default="default", help="torch.compile mode of norse's step")
    ap.add_argument("--quick", action="store_true", help="one small size, one repeat (make bench)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.quick:
        args.sizes, args.repeats = ("4096", 1) if device.type == "cuda" else ("256", 1)
        args.steps = args.steps if device.type == "cuda" else 100
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    else:
        print(f"device: cpu, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    for n in (int(s) for s in args.sizes.split(",")):
        bench_size(n, args, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
