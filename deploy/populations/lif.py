"""The ``Neurons`` kind: Lava's own LIF (``lava.proc.lif.process.LIF``), fixed and floating point.

Equations (Lava's, ``spikes.deploy.kernels``): ``u = u (1 - du) + a; v = v (1 - dv) + u + bias; s = v > vth;
v[s] = 0``. The family member must have ``reset='zero'``, ``beta = 0`` and no refractory period (the rest
is refused by :meth:`LIFKind.check_lava`, naming the layer). Quantisation (see ``spikes.deploy.quantize``):
``vth = round(v_th S)``, ``du = round(4096 (1 - alpha_syn)) - 1``, ``dv = round(4096 (1 - alpha))``,
``bias_mant << bias_exp = round(64 S bias)``.

Bias during the latency: a population of latency ``L`` (``spikes.deploy.network``) gets its first input at
step ``L``, but Lava adds the bias at every step from 0, while the torch neuron starts from ``i = v = 0`` at
its step 0. And a constant input current ``c`` (a layer bias) enters torch's synaptic current, which rises
as ``i_t = c (1 - alpha_syn^(t+1)) / (1 - alpha_syn)``: the steady state goes into Lava's v bias and the rest,
``-alpha_syn^(t+1) c / (1 - alpha_syn)``, decays exactly like Lava's input-free ``u``. So the state starts at
``(u0, v0)`` (:func:`start_state_float`; fixed point :func:`start_state_fixed`, exact integer trajectories):
``u0`` such that ``u`` holds that transient when step ``L`` begins, ``v0`` such that the ``L`` steps before
bring ``v`` back to 0. From step ``L`` on, Lava's ``u`` and ``v`` are torch's ``i`` and ``v`` (float: to
rounding). Measured on the demo's conv SNN (latencies 1-3, biases up to 0.03 v_th): without it the readout
disagreed with torch on 1.4-2.9 % of spikes in the first steps and accuracy fell 1.4 points in floating point;
with it sim-float equals torch. Bias-free populations start at 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikes.graph.neurons import Neurons
from spikes.deploy import kernels
from spikes.deploy.fixed_point import STATE_MAX, V_LIMIT, VTH_MAX, WEIGHT_MAX, bias_mantissa
from spikes.deploy.populations.base import FixedPointPopulation, PopulationKind

# Lava (the optional extra spikes[lava], heavy) loads only in ``lava_process``, which imports the kind's process.


@dataclass(eq=False)
class QPopulation(FixedPointPopulation):
    """A fixed-point Lava LIF population."""

    name: str
    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray   # (N,) int
    bias_exp: int
    scale: float
    latency: int
    u_init: np.ndarray | None = None   # (N,) int: the state at step 0 that cancels the bias during the latency
    v_init: np.ndarray | None = None   # (module docstring); None: 0

    kind = "lif"


def current_start(current: np.ndarray | None, alpha_syn: float, latency: int, n: int) -> np.ndarray:
    """``u0 = -c / ((1 - alpha_syn) alpha_syn^L)`` per neuron (module docstring): ``latency`` input-free steps
    ``u = alpha_syn u`` bring it to ``-c / (1 - alpha_syn)``, the transient torch's current starts with; 0
    without a constant current, a latency, or a synaptic current (``alpha_syn`` 0, or 1 where the steady state
    does not exist)."""
    if current is None or latency <= 0 or not 0 < alpha_syn < 1:
        return np.zeros(n)
    return -np.asarray(current, dtype=np.float64).reshape(n) / ((1 - alpha_syn) * alpha_syn**latency)


def start_state_float(bias: np.ndarray, current: np.ndarray | None, alpha: float, alpha_syn: float, latency: int,
                      v_th: float) -> tuple[np.ndarray, np.ndarray]:
    """``(u0, v0)`` (module docstring): ``u0`` from :func:`current_start`, so ``u_k = alpha_syn^(k+1) u0`` for
    the bias-only steps ``k < L``; ``v0`` solves ``v_(L-1) = alpha^L v0 + sum_k alpha^(L-1-k) (u_k + bias) = 0``
    (0 for ``alpha = 0``: no memory), at most ``v_th`` (a start above it would spike before the first input)."""
    bias = np.asarray(bias, dtype=np.float64)
    u0, v0 = current_start(current, alpha_syn, latency, bias.size).reshape(bias.shape), np.zeros_like(bias)
    if latency > 0 and alpha > 0:
        drive = sum(alpha**(latency - 1 - k) * (alpha_syn**(k + 1) * u0 + bias) for k in range(latency))
        v0 = np.minimum(-drive / alpha**latency, v_th)
    return u0, v0


def start_state_fixed(bias: np.ndarray, u0: np.ndarray, du: int, dv: int, vth: int,
                      latency: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``(u0, v0)``: ``u0`` as given (clipped to 24 bits), ``v0`` the integer in ``[-2**23 + 1, vth << 6]``
    whose ``latency`` input-free steps of Lava's exact fixed-point update (``kernels.lif_fixed_step``) end
    nearest ``v = 0``, by binary search (the update is monotone in ``v0`` while nothing spikes); 0 where the
    bias and ``u0`` are 0."""
    bias = np.asarray(bias, dtype=np.int64)
    u0 = np.clip(np.asarray(u0, dtype=np.int64).reshape(bias.shape), -V_LIMIT, V_LIMIT)
    idle = (bias == 0) & (u0 == 0)
    if latency <= 0 or idle.all():
        return np.where(idle, 0, u0), np.zeros_like(bias)
    zero = np.zeros_like(bias)

    def end(v0: np.ndarray) -> np.ndarray:
        u, v, counts = u0.copy(), v0.copy(), np.zeros((bias.size, 2), np.int64)
        for _ in range(latency):
            kernels.lif_fixed_step(zero, u, v, du, dv, vth, bias, counts)
        return v

    lo = np.full(bias.shape, -V_LIMIT, np.int64)
    hi = np.full(bias.shape, int(vth) << 6, np.int64)
    while np.any(lo < hi):              # smallest v0 in [lo, hi] with end(v0) >= 0 (hi if none)
        mid = (lo + hi) // 2
        ok = end(mid) >= 0
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, np.minimum(mid + 1, hi))
    below = np.maximum(hi - 1, -V_LIMIT)
    v0 = np.where(np.abs(end(below)) < np.abs(end(hi)), below, hi)
    return np.where(idle, 0, u0), np.where(idle, 0, v0)


class LIFKind(PopulationKind):
    name = "lif"
    node_type = Neurons
    qtype = QPopulation
    native = True

    def fold_bias(self, node: Neurons, const: np.ndarray) -> np.ndarray:
        # a constant input current c enters i (i = alpha_syn i + c); Lava adds bias to v: use the steady state
        p = node.params
        return const / (1.0 - p.alpha_syn) + p.bias

    def check_lava(self, pop) -> None:
        if isinstance(pop, QPopulation):
            return
        p = pop.params
        if p.reset != "zero":
            raise ValueError(f"layer {pop.name!r}: reset='subtract' cannot map to Lava's LIF (zero reset only); "
                             "train with reset='zero'")
        if p.adaptive:
            raise ValueError(f"layer {pop.name!r}: adaptive threshold (ALIF, beta={p.beta}) cannot map to Lava's LIF")
        if p.refractory_steps:
            raise ValueError(f"layer {pop.name!r}: refractory_steps={p.refractory_steps} cannot map to Lava's LIF")

    def quantize(self, pop, i_max: float, conv_max: float, options: dict) -> tuple[QPopulation, dict]:
        p = pop.params
        vth_target, headroom = options.get("vth_target", 2**11), options.get("headroom", 1.0)
        candidates = [vth_target / p.v_th, VTH_MAX / p.v_th]
        if i_max > 0:
            candidates.append(headroom * (STATE_MAX - 1) / 64.0 * (1.0 - p.alpha_syn) / i_max)
        if conv_max > 0:
            candidates.append(WEIGHT_MAX / conv_max)
        s = min(candidates)
        vth = int(min(max(round(p.v_th * s), 0), VTH_MAX))
        du = int(min(max(round(4096 * (1.0 - p.alpha_syn)) - 1, 0), 4095))
        dv = int(min(max(round(4096 * (1.0 - p.alpha_value)), 0), 4095))
        total_bias = pop.bias * s * 64.0
        bias_mant, bias_exp = bias_mantissa(total_bias)
        q = QPopulation(pop.name, pop.shape, du, dv, vth, bias_mant, bias_exp, s, pop.latency)
        u0 = current_start(pop.input_current, (4095 - du) / 4096, pop.latency, pop.size)   # quantised decay
        q.u_init, q.v_init = start_state_fixed(q.bias, np.round(u0 * s * 64), du, dv, vth, pop.latency)
        report = {"vth": vth, "du": du, "dv": dv, "bias_exp": bias_exp,
                  "vth_rel_error": abs(vth - p.v_th * s) / (p.v_th * s),
                  "alpha_error": abs((1.0 - dv / 4096) - p.alpha_value),
                  "alpha_syn_error": abs((1.0 - (du + 1) / 4096) - p.alpha_syn),
                  "bias_max_error": float(np.abs(bias_mant * 2.0**bias_exp - total_bias).max(initial=0) / (64 * s)),
                  "worst_case_input_bits": math.log2(max(i_max * s * 64 / (1 - p.alpha_syn), 1)) + 1}
        return q, report

    # -- sim -------------------------------------------------------------------------------------------
    def _constants(self, pop, fixed: bool):
        if fixed:
            return pop.du, pop.dv, pop.vth
        p = pop.params
        return 1.0 - p.alpha_syn, 1.0 - p.alpha_value, float(p.v_th)

    def start(self, pop, fixed: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(u, v)`` at step 0 (module docstring), one value per neuron each."""
        if fixed:
            zero = np.zeros(pop.size, np.int64)
            return tuple(zero if x is None else np.asarray(x, np.int64) for x in (pop.u_init, pop.v_init))
        p = pop.params
        return start_state_float(pop.bias, pop.input_current, p.alpha_value, p.alpha_syn, pop.latency, float(p.v_th))

    def init_state(self, pop, m: int, fixed: bool) -> dict[str, np.ndarray]:
        dt = np.int64 if fixed else np.float64
        bias = np.tile(np.asarray(pop.bias, dtype=dt), m // pop.size)
        u0, v0 = self.start(pop, fixed)
        state = {"u": np.tile(u0, m // pop.size), "v": np.tile(v0, m // pop.size), "bias": bias}
        if fixed:
            state["counts"] = np.zeros((m, 2), np.int64)
        return state

    def step(self, pop, a: np.ndarray, state: dict, t: int, fixed: bool) -> np.ndarray:
        du, dv, vth = self._constants(pop, fixed)
        if fixed:
            return kernels.lif_fixed_step(a, state["u"], state["v"], du, dv, vth, state["bias"], state["counts"])
        return kernels.lif_float_step(a, state["u"], state["v"], du, dv, vth, state["bias"])

    def run(self, pop, acc: np.ndarray, state: dict, fixed: bool) -> np.ndarray:
        du, dv, vth = self._constants(pop, fixed)
        spikes = np.zeros(acc.shape, np.uint8)
        if fixed:
            kernels.lif_fixed_sequence(acc, du, dv, vth, state["bias"], state["u"], state["v"], spikes, state["counts"])
        else:
            kernels.lif_float_sequence(acc, du, dv, vth, state["bias"], state["u"], state["v"], spikes)
        return spikes

    def final_states(self, state: dict) -> dict[str, np.ndarray]:
        return {"u": state["u"], "v": state["v"]}

    # -- Lava ------------------------------------------------------------------------------------------
    def lava_process(self, pop, fixed: bool, shape: tuple[int, ...], layout):
        from lava.proc.lif.process import LIF

        if fixed:
            return LIF(shape=shape, du=pop.du, dv=pop.dv, vth=pop.vth, bias_mant=layout(pop.bias_mant),
                       bias_exp=pop.bias_exp, **self._lava_start(pop, True, layout))
        self.check_lava(pop)
        p = pop.params
        return LIF(shape=shape, du=1.0 - p.alpha_syn, dv=1.0 - p.alpha_value, vth=float(p.v_th),
                   bias_mant=layout(pop.bias), **self._lava_start(pop, False, layout))

    def _lava_start(self, pop, fixed: bool, layout) -> dict:
        u0, v0 = self.start(pop, fixed)
        return {"u": layout(u0), "v": layout(v0)}

    def lava_output(self, proc):
        return proc.s_out

    def lava_states(self, proc) -> dict[str, np.ndarray]:
        return {"u": np.asarray(proc.u.get()), "v": np.asarray(proc.v.get())}
