"""Training-step speed of spikes vs snntorch and norse on a CPU (Adam step, fp32, 2 threads).

Three networks, the same weights, input, loss and optimiser in every library; ms per step is the median of
the repeats. ``dense floor`` is the same network's matmuls/convs alone (forward + backward, no neurons), as
torch runs them by default (NCHW); in case c ``dense floor CL`` runs the same convs on channels-last memory.

(a) recurrent: Linear 40->100, recurrent LIF 100, Linear 100->2 (readout current), T=1000, B=64, 5 % input
    spikes, loss MSE(mean over time of the readout, target).
(b) feed-forward: Linear 2312->256, LIF, Linear 256->10, LIF, T=100, B=32, 2 % input spikes,
    loss cross-entropy of the output spike counts.
(c) conv: 2x34x34 -> conv3x3 16, LIF -> conv3x3 32, LIF -> avgpool 2 -> fc 10, LIF, T=50, B=32, 2 % input.

Neuron equations: spikes and snntorch run ``v = alpha v + I; s = H(v - 1)``, subtractive reset, atan
surrogate (snntorch's default; it applies the reset one step late, its documented ``reset_delay``). norse's
LIF integrates forward Euler ``v += k (-v + I)``: its input weights are scaled by 1/k, ``k = 1 - alpha``, so
that it computes ``v = alpha v + I`` too, with its own reset to 0 and SuperSpike surrogate; its recurrent
cell (case a) is current-based, with the current decay set to 1 per step (the current is the input of the
previous step). Peers step through time in Python, as their tutorials do (``x.unbind(0)``, not ``x[t]``).

spikes runs its sequence kernels (``spikes.kernels``, numba). Alternatives measured for a LIF recurrence
(T=1000, B=64, N=100, forward + backward, 2 threads; the machine was shared, so figures are noisy):
light load: per-step autograd loop 240 ms, numba kernel 39 ms; heavy load (load average ~14): reference loop
387 ms, numba 249 ms, hand-written autograd loop 505 ms, same loop with a TorchScript step 609 ms;
torch.compile of the loop at T=100 took 199 s to compile and then 884 ms per call (it unrolls time).
A JIT-built C++ extension was not measured: it would run the same loops but needs a compiler on every
user's machine, while numba needs nothing beyond its wheel and caches compiled code on disk.

spikes' layers: (a) ``RecurrentLIF`` (the sparse input projection is summed inside the recurrent kernel),
(b) ``EventLinear`` + ``LIF``, (c) ``EventConv2d`` + ``LIF`` (scatter forward and weight gradient over the
non-zero inputs, channels-last output, dense oneDNN input gradient) with ``TimeDistributed(AvgPool2d)``.
What was measured choosing them (2-core VM, shared: load average 10-30 during most of it, so CPU ms are
quoted and only same-run comparisons count):

- Memory: glibc maps each array above 32 MB afresh and the VM page-faults it at ~0.27 ms/MB: a 237 MB
  (T*B, 32, 34, 34) array takes 62-73 ms to allocate and zero, 7 ms to refill once mapped. Whole-sequence
  kernels therefore reuse their output blocks (``spikes.kernels.buffers``). Process-wide alternatives were
  rejected: ``MALLOC_MMAP_THRESHOLD_`` (heap for everything) made snntorch 6x slower in case c (6.6 s vs
  1.1 s per step), ``THP_MEM_ALLOC_ENABLE=1`` halves the faults but is the user's environment to set.
- Layout, oneDNN on (1600, C, 34, 34) with fresh outputs, NCHW vs channels-last: conv3x3 16->32 forward
  292 vs 129 ms, its input gradient 256 vs 109 ms, avg_pool2d 97 vs 38 ms, its backward 150 vs 94 ms. So
  EventConv2d returns channels-last, the LIF kernels keep any dense layout, and TimeDistributed hands a
  channels-last output its gradient channels-last (else avg_pool2d's backward copies the 237 MB input
  gradient twice: +263 ms CPU).
- Pooling before the Linear head (case c): a channels-last pool output costs a 59 MB copy at the flatten and a
  channels-last copy of its gradient (16 + 22 ms of a 390 ms step, idle machine); the compiled pool now writes
  NCHW through a per-image tile and reads the gradient in either layout: 390 -> 280 ms per step.
- numba: with the default (python) error model the zero-division check in the surrogate kept the LIF
  backward scalar: 64 -> 19 ms CPU for 30 M neuron-steps with ``error_model="numpy"``; a plain-LIF row loop
  over 4 arrays instead of 9 (LLVM's alias-check limit) vectorises forward and backward.
- Event conv (conv2: 976 k events, 3x3x32 taps): per-tap helpers taking array slices 128-142 ms CPU,
  direct 4-D indexing after a per-image event list 55 ms; fixed 16-wide channel blocks 137 ms and one
  contiguous run per kernel row 240 ms were slower. Dense oneDNN forward of the same conv: 129-292 ms.
- Recurrent backward (a): the dense ``dL/dI[t] @ W_rec`` per step, 640 M MAC per training step: OpenBLAS
  per step and batch chunk 26 ms CPU, hand-written 4-row blocked loop 37 ms, one row at a time 53 ms:
  BLAS kept. Summing the input projection inside the recurrent loop (no (T, B, N) current or gradient
  stored) and the vectorised rows cut the recurrent layer from 71 + 62 ms to 45 + 44 ms CPU (fwd + bwd,
  same run, loaded machine).
- Whole training steps, old (before these changes) vs new spikes in one process, interleaved (loaded):
  (a) 225 -> 122 ms wall, 198 -> 124 ms CPU (the earlier idle 60.8 ms would scale to ~33-38 ms);
  (b) 35 -> 28 ms wall; (c) 7423 -> 1925 ms wall, 4667 -> 1087 ms CPU, against dense floor 3745 ms /
  2194 ms CPU (NCHW) and 2047 ms / 1637 ms CPU (channels-last). Losses of old and new are identical.

Usage: ``python benchmarks/bench_training.py [--quick] [--only a|b|c] [--repeats N]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

ALPHA = 0.95


# ------------------------------------------------------------------------------------------------ spikes

GAIN = {"a": (4.0, 1.0, 1.0), "b": (6.0, 4.0), "c": (4.0, 3.0, 3.0)}  # init x gain: hidden layers fire a few %


def spikes_models(case: str):
    model = _spikes_models(case)
    with torch.no_grad():
        for (w, _), g in zip(layer_weights(case, model), GAIN[case]):
            w.mul_(g)
    return model


def _spikes_models(case: str):
    from spikes.layers import EventConv2d, EventLinear, RecurrentLIF, TimeDistributed
    from spikes.neurons import LIF, NeuronParameters

    if case == "a":
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rec = RecurrentLIF(40, 100, NeuronParameters(alpha=ALPHA), bias=False)  # norse's has no input bias
                self.out = nn.Linear(100, 2)

            def forward(self, x):
                # readout of the time-mean: the same as the mean of the per-step readout (the readout is linear)
                return self.out(self.rec(x).mean(0))
        return Net()
    if case == "b":
        return nn.Sequential(EventLinear(2312, 256), LIF(ALPHA), nn.Linear(256, 10), LIF(ALPHA))
    return nn.Sequential(EventConv2d(2, 16, 3, padding=1), LIF(ALPHA),
                         EventConv2d(16, 32, 3, padding=1), LIF(ALPHA),
                         TimeDistributed(nn.AvgPool2d(2)), nn.Flatten(2), nn.Linear(32 * 17 * 17, 10), LIF(ALPHA))


def layer_weights(case: str, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(weight, bias) of the synaptic layers in order (case a: input, recurrent, readout)."""
    if case == "a":
        return [(model.rec.input.weight, model.rec.input.bias), (model.rec.weight_rec, None),
                (model.out.weight, model.out.bias)]
    return [(m.weight, m.bias) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


# ------------------------------------------------------------------------------------------------ peers

def snntorch_model(case: str, weights):
    import snntorch as snn

    def leaky():
        return snn.Leaky(beta=ALPHA, threshold=1.0, reset_mechanism="subtract")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if case == "a":
                self.fc1, self.fc2 = nn.Linear(40, 100), nn.Linear(100, 2)
                self.lif = snn.RLeaky(beta=ALPHA, linear_features=100, threshold=1.0, reset_mechanism="subtract")
                _copy([self.fc1, self.lif.recurrent, self.fc2], weights)
            elif case == "b":
                self.fc1, self.fc2 = nn.Linear(2312, 256), nn.Linear(256, 10)
                self.l1, self.l2 = leaky(), leaky()
                _copy([self.fc1, self.fc2], weights)
            else:
                self.c1, self.c2 = nn.Conv2d(2, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
                self.fc = nn.Linear(32 * 17 * 17, 10)
                self.l1, self.l2, self.l3 = leaky(), leaky(), leaky()
                _copy([self.c1, self.c2, self.fc], weights)

        def forward(self, x):
            out = []
            if case == "a":
                spk, mem = self.lif.init_rleaky()
                for x_t in x.unbind(0):
                    spk, mem = self.lif(self.fc1(x_t), spk, mem)
                    out.append(self.fc2(spk))
                return torch.stack(out).mean(0)
            if case == "b":
                m1, m2 = self.l1.init_leaky(), self.l2.init_leaky()
                for x_t in x.unbind(0):
                    s1, m1 = self.l1(self.fc1(x_t), m1)
                    s2, m2 = self.l2(self.fc2(s1), m2)
                    out.append(s2)
                return torch.stack(out)
            m1, m2, m3 = self.l1.init_leaky(), self.l2.init_leaky(), self.l3.init_leaky()
            for x_t in x.unbind(0):
                s1, m1 = self.l1(self.c1(x_t), m1)
                s2, m2 = self.l2(self.c2(s1), m2)
                s3, m3 = self.l3(self.fc(F.avg_pool2d(s2, 2).flatten(1)), m3)
                out.append(s3)
            return torch.stack(out)
    return Net()


def norse_model(case: str, weights):
    import norse.torch as norse

    k = 1.0 - ALPHA
    dt = 1e-3
    box = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(k / dt), v_th=torch.as_tensor(1.0))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if case == "a":
                p = norse.LIFParameters(tau_mem_inv=torch.as_tensor(k / dt), tau_syn_inv=torch.as_tensor(1.0 / dt),
                                        v_th=torch.as_tensor(1.0))
                self.rec = norse.LIFRecurrent(40, 100, p=p, dt=dt, autapses=True)
                self.fc2 = nn.Linear(100, 2)
                with torch.no_grad():
                    self.rec.input_weights.copy_(weights[0][0] / k)
                    self.rec.recurrent_weights.copy_(weights[1][0] / k)
                _copy([self.fc2], weights[2:])
            elif case == "b":
                self.fc1, self.fc2 = nn.Linear(2312, 256), nn.Linear(256, 10)
                self.l1, self.l2 = norse.LIFBoxCell(box, dt=dt), norse.LIFBoxCell(box, dt=dt)
                _copy([self.fc1, self.fc2], weights, 1.0 / k)
            else:
                self.c1, self.c2 = nn.Conv2d(2, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
                self.fc = nn.Linear(32 * 17 * 17, 10)
                self.l1, self.l2, self.l3 = (norse.LIFBoxCell(box, dt=dt) for _ in range(3))
                _copy([self.c1, self.c2, self.fc], weights, 1.0 / k)

        def forward(self, x):
            if case == "a":
                s, _ = self.rec(x)
                return self.fc2(s).mean(0)
            if case == "b":
                out, st1, st2 = [], None, None
                for x_t in x.unbind(0):
                    s1, st1 = self.l1(self.fc1(x_t), st1)
                    s2, st2 = self.l2(self.fc2(s1), st2)
                    out.append(s2)
                return torch.stack(out)
            out, st1, st2, st3 = [], None, None, None
            for x_t in x.unbind(0):
                s1, st1 = self.l1(self.c1(x_t), st1)
                s2, st2 = self.l2(self.c2(s1), st2)
                s3, st3 = self.l3(self.fc(F.avg_pool2d(s2, 2).flatten(1)), st3)
                out.append(s3)
            return torch.stack(out)
    return Net()


def _copy(layers, weights, scale: float = 1.0) -> None:
    with torch.no_grad():
        for layer, (w, b) in zip(layers, weights):
            layer.weight.copy_(w * scale)
            if layer.bias is not None:
                layer.bias.copy_(b * scale) if b is not None else layer.bias.zero_()


# ------------------------------------------------------------------------------------------------ floor

def dense_floor_model(case: str, weights, channels_last: bool = False):
    """The same synaptic layers without neurons (the recurrence as T small matmuls, as every peer runs it);
    ``channels_last``: case c's convs on channels-last memory (oneDNN's faster layout here)."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.params = nn.ParameterList([nn.Parameter(w.detach().clone()) for w, _ in weights])

        def forward(self, x):
            w = list(self.params)
            if case == "a":
                cur = F.linear(x, w[0])
                h = torch.zeros_like(cur[0])
                out = []
                for c_t in cur.unbind(0):
                    h = c_t + h @ w[1].t()
                    out.append(h)
                return F.linear(torch.stack(out).mean(0), w[2])
            if case == "b":
                return F.linear(F.linear(x, w[0]), w[1])
            t, b = x.shape[:2]
            x = x.flatten(0, 1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
                w = [p.contiguous(memory_format=torch.channels_last) if p.dim() == 4 else p for p in w]
            y = F.conv2d(F.conv2d(x, w[0], padding=1), w[1], padding=1)
            y = F.avg_pool2d(y, 2).flatten(1)
            return F.linear(y, w[2]).reshape(t, b, -1)
    return Net()


# ------------------------------------------------------------------------------------------------ driver

CASES = {
    "a": dict(shape=(1000, 64, 40), density=0.05, classes=None),
    "b": dict(shape=(100, 32, 2312), density=0.02, classes=10),
    "c": dict(shape=(50, 32, 2, 34, 34), density=0.02, classes=10),
}


def make_step(model: nn.Module, x: torch.Tensor, target: torch.Tensor, case: str, rescale_floor: bool = False) -> Callable[[], float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        if case == "a":
            loss = F.mse_loss(out, target)
        else:
            counts = out.sum(0)
            loss = F.cross_entropy(counts * (1e-3 if rescale_floor else 1.0), target)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def time_steps(steps: dict[str, Callable[[], float]], repeats: int) -> dict[str, tuple[float, float, float]]:
    """Median wall ms, median CPU ms (all threads of this process) and loss per library. The libraries take
    turns within each repeat (round robin), so a change of the machine's load hits them alike."""
    losses = {lib: step() for lib, step in steps.items()}  # warm-up (compilation, allocator)
    walls: dict[str, list[float]] = {lib: [] for lib in steps}
    cpus: dict[str, list[float]] = {lib: [] for lib in steps}
    for _ in range(repeats):
        for lib, step in steps.items():
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            walls[lib].append(time.perf_counter() - t0)
            cpus[lib].append(time.process_time() - c0)
    return {lib: (statistics.median(walls[lib]) * 1e3, statistics.median(cpus[lib]) * 1e3, losses[lib]) for lib in steps}


def run_case(case: str, repeats: int, libs: list[str]) -> dict[str, float]:
    cfg = CASES[case]
    torch.manual_seed(0)
    x = (torch.rand(cfg["shape"]) < cfg["density"]).float()
    b = cfg["shape"][1]
    target = torch.rand(b, 2) if cfg["classes"] is None else torch.randint(0, cfg["classes"], (b,))
    torch.manual_seed(1)
    ours = spikes_models(case)
    weights = [(w.detach().clone(), None if bias is None else bias.detach().clone()) for w, bias in layer_weights(case, ours)]
    builders = {"spikes": lambda: ours, "snntorch": lambda: snntorch_model(case, weights),
                "norse": lambda: norse_model(case, weights), "dense floor": lambda: dense_floor_model(case, weights),
                "dense floor CL": lambda: dense_floor_model(case, weights, channels_last=True)}
    results: dict[str, float] = {}
    cpu: dict[str, float] = {}
    print(f"\n({case}) input {cfg['shape']}, density {cfg['density']:.0%}, {repeats} repeats (median)", flush=True)
    steps = {}
    for lib in libs:
        if lib == "dense floor CL" and case != "c":
            continue
        try:
            model = builders[lib]()
        except ImportError as exc:
            print(f"  {lib:14s} skipped ({exc})")
            continue
        steps[lib] = make_step(model, x, target, case, rescale_floor=lib.startswith("dense floor"))
    for lib, (ms, cpu_ms, loss) in time_steps(steps, repeats).items():
        results[lib] = ms
        cpu[lib] = cpu_ms
        print(f"  {lib:14s} {ms:9.1f} ms/step wall  {cpu_ms:9.1f} ms CPU   loss {loss:.4f}", flush=True)
    if "spikes" in results:
        for lib in ("snntorch", "norse"):
            if lib in results:
                print(f"  speed-up vs {lib}: {results[lib] / results['spikes']:.2f}x wall, "
                      f"{cpu[lib] / cpu['spikes']:.2f}x CPU")
        for lib in ("dense floor", "dense floor CL"):
            if lib in results:
                print(f"  spikes / {lib}: {results['spikes'] / results[lib]:.2f}x wall, {cpu['spikes'] / cpu[lib]:.2f}x CPU")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--only", choices=sorted(CASES), action="append", help="run only this case (repeatable)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--libs", default="spikes,snntorch,norse,dense floor,dense floor CL",
                    help="comma-separated; 'dense floor CL' (channels-last convs) runs in case c only")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    repeats = args.repeats or (2 if args.quick else 5)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32; load average {os.getloadavg()[0]:.1f} "
          f"at start ({os.cpu_count()} cores: compare only figures measured in the same run)")
    for case in args.only or sorted(CASES):
        run_case(case, repeats, [s.strip() for s in args.libs.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
