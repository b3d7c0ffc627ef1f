"""The ``Neurons`` kind: Lava's own LIF (``lava.proc.lif.process.LIF``), fixed and floating point.

Equations (Lava's, ``spikes.deploy.kernels``): ``u = u (1 - du) + a; v = v (1 - dv) + u + bias; s = v > vth;
v[s] = 0``. The family member must have ``reset='zero'``, ``beta = 0`` and no refractory period (the rest
is refused by :meth:`LIFKind.check_lava`, naming the layer). Quantisation (see ``spikes.deploy.quantize``):
``vth = round(v_th S)``, ``du = round(4096 (1 - alpha_syn)) - 1``, ``dv = round(4096 (1 - alpha))``,
``bias_mant << bias_exp = round(64 S bias)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikes.deploy.graph.neurons import Neurons
from spikes.deploy.populations.base import FixedPointPopulation, PopulationKind

VTH_MAX = 2**17 - 1
BIAS_MANT_MAX = 2**12 - 1
STATE_MAX = 2**23
WEIGHT_MAX = 254


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

    kind = "lif"



def bias_mantissa(total: np.ndarray) -> tuple[np.ndarray, int]:
    """``(mant, exp)`` with ``mant << exp ~ total``, 13-bit mantissa, exponent in 0..7."""
    exp = 0
    while exp < 7 and np.abs(np.round(total / 2**exp)).max(initial=0) > BIAS_MANT_MAX:
        exp += 1
    return np.clip(np.round(total / 2**exp), -BIAS_MANT_MAX - 1, BIAS_MANT_MAX).astype(np.int64), exp


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

    def init_state(self, pop, m: int, fixed: bool) -> dict[str, np.ndarray]:
        dt = np.int64 if fixed else np.float64
        bias = np.tile(np.asarray(pop.bias, dtype=dt), m // pop.size)
        state = {"u": np.zeros(m, dt), "v": np.zeros(m, dt), "bias": bias}
        if fixed:
            state["counts"] = np.zeros((m, 2), np.int64)
        return state

    def step(self, pop, a: np.ndarray, state: dict, t: int, fixed: bool) -> np.ndarray:
        from spikes.deploy import kernels

        du, dv, vth = self._constants(pop, fixed)
        if fixed:
            return kernels.lif_fixed_step(a, state["u"], state["v"], du, dv, vth, state["bias"], state["counts"])
        return kernels.lif_float_step(a, state["u"], state["v"], du, dv, vth, state["bias"])

    def run(self, pop, acc: np.ndarray, state: dict, fixed: bool) -> np.ndarray:
        from spikes.deploy import kernels

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
                       bias_exp=pop.bias_exp)
        self.check_lava(pop)
        p = pop.params
        return LIF(shape=shape, du=1.0 - p.alpha_syn, dv=1.0 - p.alpha_value, vth=float(p.v_th),
                   bias_mant=layout(pop.bias))

    def lava_output(self, proc):
        return proc.s_out

    def lava_states(self, proc) -> dict[str, np.ndarray]:
        return {"u": np.asarray(proc.u.get()), "v": np.asarray(proc.v.get())}
