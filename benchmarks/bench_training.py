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
cell (case a) is current-based, with the current decay set to 1 per step (norse 1.1 adds a step's input to the
current before the voltage update, so the current is that step's input). Peers step through time in Python, as
their tutorials do (``x.unbind(0)``, not ``x[t]``).

Sizes: ``CaseSize`` (T, B, input density, input features or channels, hidden N, conv channels, input side); the
builders take one and default to ``CASES``, the three sizes above (``bench_scaling.py`` sweeps them). ``--check``
(and ``run_case(check=True)``) first asserts that the three libraries compute the same network
(``same_network``): first-step losses equal to 1e-4 relative with reset to zero in all three (snntorch's
subtractive reset is one step late and subtracts the threshold after the decay, spikes' before it, so the default
settings are not one network); the timed steps keep the defaults.

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

Usage: ``python benchmarks/bench_training.py [--quick] [--only a|b|c] [--repeats N] [--check]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

ALPHA = 0.95


# ------------------------------------------------------------------------------------------------ spikes

GAIN = {"a": (4.0, 1.0, 1.0), "b": (6.0, 4.0), "c": (4.0, 3.0, 3.0)}  # init x gain: hidden layers fire a few %


@dataclass(frozen=True)
class CaseSize:
    """The sizes of one case. ``steps`` T, ``batch`` B, ``density`` the input's spike probability per entry;
    ``n_in`` input features (a, b) or input channels (c); ``outputs`` readout width (a: regression targets, b, c:
    classes); ``hidden`` the recurrent population N (a) or the hidden layer (b); ``channels`` the two convs'
    output channels and ``input_size`` the square input's side (c; avg-pool 2 halves it, floor)."""

    steps: int
    batch: int
    density: float
    n_in: int
    outputs: int
    hidden: int = 0
    channels: tuple[int, int] = (16, 32)
    input_size: int = 34

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "n_in", "outputs", "input_size"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"CaseSize.{name} must be a whole number >= 1, got {getattr(self, name)}")
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"CaseSize.density (input spike probability) must be in (0, 1], got {self.density}")
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise ValueError(f"CaseSize.channels must be two channel counts >= 1, got {self.channels}")
        if self.input_size < 2:
            raise ValueError(f"CaseSize.input_size must be >= 2 (avg-pool 2 follows the convs), got {self.input_size}")

    def input_shape(self, case: str) -> tuple[int, ...]:
        if case == "c":
            return (self.steps, self.batch, self.n_in, self.input_size, self.input_size)
        return (self.steps, self.batch, self.n_in)

    def pooled_features(self) -> int:
        """Case c: inputs of the Linear head, ``channels[1] * (input_size // 2)**2``."""
        return self.channels[1] * (self.input_size // 2) ** 2


CASES = {  # today's sizes (the defaults of every builder)
    "a": CaseSize(steps=1000, batch=64, density=0.05, n_in=40, outputs=2, hidden=100),
    "b": CaseSize(steps=100, batch=32, density=0.02, n_in=2312, outputs=10, hidden=256),
    "c": CaseSize(steps=50, batch=32, density=0.02, n_in=2, outputs=10, channels=(16, 32), input_size=34),
}


def _size(case: str, size: CaseSize | None) -> CaseSize:
    if case not in CASES:
        raise ValueError(f"case must be one of {sorted(CASES)}, got {case!r}")
    return CASES[case] if size is None else size


def spikes_models(case: str, size: CaseSize | None = None, reset: str = "subtract"):
    model = _spikes_models(case, _size(case, size), reset)
    with torch.no_grad():
        for (w, _), g in zip(layer_weights(case, model), GAIN[case]):
            w.mul_(g)
    return model


def _spikes_models(case: str, size: CaseSize, reset: str):
    from spikes.layers import EventConv2d, EventLinear, RecurrentLIF, TimeDistributed
    from spikes.neurons import LIF, NeuronParameters

    if case == "a":
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rec = RecurrentLIF(size.n_in, size.hidden, NeuronParameters(alpha=ALPHA, reset=reset),
                                        bias=False)  # norse's has no input bias
                self.out = nn.Linear(size.hidden, size.outputs)

            def forward(self, x):
                # readout of the time-mean: the same as the mean of the per-step readout (the readout is linear)
                return self.out(self.rec(x).mean(0))
        return Net()
    if case == "b":
        return nn.Sequential(EventLinear(size.n_in, size.hidden), LIF(ALPHA, reset=reset),
                             nn.Linear(size.hidden, size.outputs), LIF(ALPHA, reset=reset))
    c1, c2 = size.channels
    return nn.Sequential(EventConv2d(size.n_in, c1, 3, padding=1), LIF(ALPHA, reset=reset),
                         EventConv2d(c1, c2, 3, padding=1), LIF(ALPHA, reset=reset),
                         TimeDistributed(nn.AvgPool2d(2)), nn.Flatten(2), nn.Linear(size.pooled_features(), size.outputs),
                         LIF(ALPHA, reset=reset))


def layer_weights(case: str, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(weight, bias) of the synaptic layers in order (case a: input, recurrent, readout)."""
    if case == "a":
        return [(model.rec.input.weight, model.rec.input.bias), (model.rec.weight_rec, None),
                (model.out.weight, model.out.bias)]
    return [(m.weight, m.bias) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


# ------------------------------------------------------------------------------------------------ peers

def snntorch_model(case: str, weights, size: CaseSize | None = None, reset: str = "subtract",
                   spike_grad: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """``reset="zero"``: the configuration that computes spikes' zero-reset network (the check of ``same_network``).
    Leaky's zero reset, delayed as by default, zeroes ``beta * mem`` at the step after a spike, as spikes' zero
    reset does; RLeaky's delayed zero reset zeroes that step's whole membrane, its input included, so RLeaky
    runs with ``reset_delay=False`` there (the membrane after a spike is 0, so its own reset never fires twice).
    ``spike_grad``: snntorch's spike function (default: its atan surrogate, whose forward returns float32)."""
    import snntorch as snn

    size = _size(case, size)
    mechanism = {"subtract": "subtract", "zero": "zero"}[reset]

    def leaky():
        return snn.Leaky(beta=ALPHA, threshold=1.0, reset_mechanism=mechanism, spike_grad=spike_grad)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if case == "a":
                self.fc1, self.fc2 = nn.Linear(size.n_in, size.hidden), nn.Linear(size.hidden, size.outputs)
                self.lif = snn.RLeaky(beta=ALPHA, linear_features=size.hidden, threshold=1.0,
                                      reset_mechanism=mechanism, reset_delay=reset != "zero", spike_grad=spike_grad)
                _copy([self.fc1, self.lif.recurrent, self.fc2], weights)
            elif case == "b":
                self.fc1, self.fc2 = nn.Linear(size.n_in, size.hidden), nn.Linear(size.hidden, size.outputs)
                self.l1, self.l2 = leaky(), leaky()
                _copy([self.fc1, self.fc2], weights)
            else:
                c1, c2 = size.channels
                self.c1, self.c2 = nn.Conv2d(size.n_in, c1, 3, padding=1), nn.Conv2d(c1, c2, 3, padding=1)
                self.fc = nn.Linear(size.pooled_features(), size.outputs)
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


def norse_model(case: str, weights, size: CaseSize | None = None):
    """norse resets to 0 at the step of the spike: it computes spikes' ``reset="zero"`` network."""
    import norse.torch as norse

    size = _size(case, size)
    k = 1.0 - ALPHA
    dt = 1e-3
    box = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(k / dt), v_th=torch.as_tensor(1.0))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if case == "a":
                p = norse.LIFParameters(tau_mem_inv=torch.as_tensor(k / dt), tau_syn_inv=torch.as_tensor(1.0 / dt),
                                        v_th=torch.as_tensor(1.0))
                self.rec = norse.LIFRecurrent(size.n_in, size.hidden, p=p, dt=dt, autapses=True)
                self.fc2 = nn.Linear(size.hidden, size.outputs)
                with torch.no_grad():
                    self.rec.input_weights.copy_(weights[0][0] / k)
                    self.rec.recurrent_weights.copy_(weights[1][0] / k)
                _copy([self.fc2], weights[2:])
            elif case == "b":
                self.fc1, self.fc2 = nn.Linear(size.n_in, size.hidden), nn.Linear(size.hidden, size.outputs)
                self.l1, self.l2 = norse.LIFBoxCell(box, dt=dt), norse.LIFBoxCell(box, dt=dt)
                _copy([self.fc1, self.fc2], weights, 1.0 / k)
            else:
                c1, c2 = size.channels
                self.c1, self.c2 = nn.Conv2d(size.n_in, c1, 3, padding=1), nn.Conv2d(c1, c2, 3, padding=1)
                self.fc = nn.Linear(size.pooled_features(), size.outputs)
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

LOSS_RTOL = 1e-4  # first losses of the libraries must agree to this, relative (issue 21 item 5)


def loss_of(case: str, out: torch.Tensor, target: torch.Tensor, rescale_floor: bool = False) -> torch.Tensor:
    """Case a: MSE of the readout; b, c: cross-entropy of the output spike counts (the floor's counts, which are
    currents, scaled by 1e-3)."""
    if case == "a":
        return F.mse_loss(out, target)
    return F.cross_entropy(out.sum(0) * (1e-3 if rescale_floor else 1.0), target)


def make_step(model: nn.Module, x: torch.Tensor, target: torch.Tensor, case: str, rescale_floor: bool = False) -> Callable[[], float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_of(case, model(x), target, rescale_floor)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def case_inputs(case: str, size: CaseSize | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The input spikes (seed 0) and the target (a: uniform regression targets, b, c: class labels)."""
    size = _size(case, size)
    torch.manual_seed(0)
    x = (torch.rand(size.input_shape(case)) < size.density).float()
    if case == "a":
        return x, torch.rand(size.batch, size.outputs)
    return x, torch.randint(0, size.outputs, (size.batch,))


def _step_in_dtype(v_minus_threshold: torch.Tensor) -> torch.Tensor:
    """H(v - v_th), strict, in the membrane's dtype (no surrogate: the check runs forward only)."""
    return (v_minus_threshold > 0).to(v_minus_threshold.dtype)


def same_network(case: str, weights, x: torch.Tensor, target: torch.Tensor, size: CaseSize | None = None,
                 libs: tuple[str, ...] = ("spikes", "snntorch", "norse")) -> str:
    """Assert that spikes, snntorch and norse compute the same network: their first-step losses (the loss of the
    first training step is the forward pass's) agree to ``LOSS_RTOL`` relative to spikes'. All three run with the
    same reset timing, reset to zero at the step of the spike (spikes ``reset="zero"``, snntorch
    ``reset_mechanism="zero"``, norse's own reset), the same weights (norse's scaled by 1/k), in float64 so that
    rounding cannot flip a spike that sits at the threshold (in float32 the libraries' different summation orders
    do, and a recurrent network or 1000 steps spread one flip). The dense floor is no spiking network: not
    checked. Returns the configuration checked, for the output; raises AssertionError naming the library."""
    size = _size(case, size)

    def spikes_zero_reset():
        model = spikes_models(case, size, reset="zero")
        with torch.no_grad():
            for (w, b), (w0, b0) in zip(layer_weights(case, model), weights):
                w.copy_(w0)
                if b is not None:
                    b.copy_(b0)
        return model
    # snntorch's atan spike function returns float32 spikes, which its float64 layers refuse: the check runs it with
    # the same strict step H(v - 1) in the membrane's dtype (the forward pass is unchanged, only no surrogate)
    builders = {"spikes": spikes_zero_reset,
                "snntorch": lambda: snntorch_model(case, weights, size, reset="zero", spike_grad=_step_in_dtype),
                "norse": lambda: norse_model(case, weights, size)}
    x64, target64 = x.double(), target.double() if target.is_floating_point() else target
    losses: dict[str, float] = {}
    for lib in libs:
        try:
            model = builders[lib]().double()
        except ImportError as exc:
            print(f"  {lib:14s} not checked ({exc})")
            continue
        if lib == "snntorch":  # its beta is a float32 tensor: 0.95 rounded to float32 is 1.2e-8 off ALPHA, enough
            with torch.no_grad():  # to flip a spike somewhere in 25 M neuron-steps (seen at N = 400: 2.4e-5 apart)
                for module in model.modules():
                    if isinstance(getattr(module, "beta", None), torch.Tensor):
                        module.beta.fill_(ALPHA)
        with torch.no_grad():
            losses[lib] = float(loss_of(case, model(x64), target64))
        del model
    if "spikes" not in losses:
        raise AssertionError("same_network needs spikes' loss as the reference")
    ref = losses["spikes"]
    for lib, loss in losses.items():
        rel = abs(loss - ref) / max(abs(ref), 1e-12)
        assert rel <= LOSS_RTOL, (f"case {case}: {lib}'s first loss {loss:.8g} differs from spikes' {ref:.8g} by "
                                  f"{rel:.2e} relative (> {LOSS_RTOL:g}): not the same network")
    spread = max(abs(v - ref) / max(abs(ref), 1e-12) for v in losses.values())
    return (f"same network: first losses ({', '.join(f'{k} {v:.6f}' for k, v in losses.items())}) agree to "
            f"{spread:.1e} <= {LOSS_RTOL:g} relative, checked in float64 with reset to zero in all "
            f"(snntorch reset_mechanism='zero'{', RLeaky reset_delay=False' if case == 'a' else ''}); timed: each "
            f"library's default settings")


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


def run_case(case: str, repeats: int, libs: list[str], size: CaseSize | None = None,
             check: bool = False) -> dict[str, float]:
    """Median ms per training step per library; ``check``: assert ``same_network`` before any timing."""
    size = _size(case, size)
    x, target = case_inputs(case, size)
    torch.manual_seed(1)
    ours = spikes_models(case, size)
    weights = [(w.detach().clone(), None if bias is None else bias.detach().clone()) for w, bias in layer_weights(case, ours)]
    builders = {"spikes": lambda: ours, "snntorch": lambda: snntorch_model(case, weights, size),
                "norse": lambda: norse_model(case, weights, size), "dense floor": lambda: dense_floor_model(case, weights),
                "dense floor CL": lambda: dense_floor_model(case, weights, channels_last=True)}
    results: dict[str, float] = {}
    cpu: dict[str, float] = {}
    print(f"\n({case}) input {size.input_shape(case)}, density {size.density:.0%}, {repeats} repeats (median)", flush=True)
    if check:
        print("  " + same_network(case, weights, x, target, size,
                                  tuple(lib for lib in ("spikes", "snntorch", "norse") if lib in libs)), flush=True)
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
    ap.add_argument("--check", action="store_true",
                    help="assert that the libraries compute the same network (first losses, zero reset) before timing")
    ap.add_argument("--libs", default="spikes,snntorch,norse,dense floor,dense floor CL",
                    help="comma-separated; 'dense floor CL' (channels-last convs) runs in case c only")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    repeats = args.repeats or (2 if args.quick else 5)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32; load average {os.getloadavg()[0]:.1f} "
          f"at start ({os.cpu_count()} cores: compare only figures measured in the same run)")
    for case in args.only or sorted(CASES):
        run_case(case, repeats, [s.strip() for s in args.libs.split(",")], check=args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
