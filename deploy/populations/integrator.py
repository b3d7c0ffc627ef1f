"""The ``Integrator`` kind: a non-spiking leaky readout (custom Lava process ``LeakyIntegrator``).

Equations (float, torch units): ``y[t] = alpha y[t-1] + a[t] + [t >= onset] bias``; fixed point, with the
population's scale S (``v = 64 S y``)::

    v = sign(v (4096 - dv)) (|v (4096 - dv)| >> 12) + (a << 6) + [t >= onset] (bias_mant << bias_exp)
    v = clip(v, -(2**23 - 1), 2**23 - 1)                       dv = round(4096 (1 - alpha)) in 0..4096

``onset`` is the population's latency: the bias starts when the first input arrives, so the readout equals
the torch model's from its first step (``spikes.deploy.network``). Quantisation: S is the largest scale
at which the worst case ``|y| <= (max input + max |bias|) * G`` fits the 24-bit state (``G = 1 / (1 - alpha)``,
or ``integrator_horizon`` steps, default 32, for a perfect integrator), times ``headroom``, and at which
the largest bias fits its 13-bit mantissa shifted by 7 (``64 S max|bias| <= 4095 << 7``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikes.graph.integrator import Integrator
from spikes.deploy.fixed_point import BIAS_MANT_MAX, V_LIMIT, bias_mantissa
from spikes.deploy.populations.base import FixedPointPopulation, PopulationKind
from spikes.deploy.steps import integrator_fixed_step

# Lava (the optional extra spikes[lava], heavy) loads only in ``lava_process``, which imports the kind's process.


@dataclass(eq=False)
class QIntegrator(FixedPointPopulation):
    """A fixed-point integrator population; its values decode as ``v / (64 scale)``."""

    name: str
    shape: tuple[int, ...]
    dv: int
    bias_mant: np.ndarray
    bias_exp: int
    scale: float
    latency: int
    onset: int

    kind = "integrator"


    def decode(self, values: np.ndarray) -> np.ndarray:
        """Fixed-point values -> float units of the torch model."""
        return np.asarray(values, dtype=np.float64) / (64.0 * self.scale)


class IntegratorKind(PopulationKind):
    name = "integrator"
    node_type = Integrator
    qtype = QIntegrator
    graded = True

    def fold_bias(self, node: Integrator, const: np.ndarray) -> np.ndarray:
        return const + node.bias_vector()

    def quantize(self, pop, i_max: float, conv_max: float, options: dict) -> tuple[QIntegrator, dict]:
        node: Integrator = pop.node
        gain = 1.0 / (1.0 - node.alpha) if node.alpha < 1.0 else float(options.get("integrator_horizon", 32))
        bound = (i_max + float(np.abs(pop.bias).max(initial=0))) * gain
        s = options.get("headroom", 1.0) * V_LIMIT / 64.0 / bound if bound > 0 else 1.0
        if conv_max > 0:
            s = min(s, 254.0 / conv_max)
        b_max = float(np.abs(pop.bias).max(initial=0))
        if b_max > 0:   # the bias must fit its 13-bit mantissa << 7 (else it would be clipped)
            s = min(s, (BIAS_MANT_MAX << 7) / (64.0 * b_max))
        dv = int(min(max(round(4096 * (1.0 - node.alpha)), 0), 4096))
        total_bias = pop.bias * s * 64.0
        bias_mant, bias_exp = bias_mantissa(total_bias)
        q = QIntegrator(pop.name, pop.shape, dv, bias_mant, bias_exp, s, pop.latency, pop.latency)
        report = {"dv": dv, "bias_exp": bias_exp, "alpha_error": abs((1.0 - dv / 4096) - node.alpha),
                  "bias_max_error": float(np.abs(bias_mant * 2.0**bias_exp - total_bias).max(initial=0) / (64 * s)),
                  "worst_case_input_bits": math.log2(max(bound * s * 64, 1)) + 1, "output_max": bound}
        return q, report

    # -- sim -------------------------------------------------------------------------------------------
    def init_state(self, pop, m: int, fixed: bool) -> dict[str, np.ndarray]:
        dt = np.int64 if fixed else np.float64
        state = {"v": np.zeros(m, dt), "bias": np.tile(np.asarray(pop.bias, dtype=dt), m // pop.size)}
        if fixed:
            state["counts"] = np.zeros((m, 2), np.int64)
        return state

    def step(self, pop, a: np.ndarray, state: dict, t: int, fixed: bool) -> np.ndarray:
        if fixed:
            return integrator_fixed_step(state["v"], a, pop.dv, state["bias"], t, pop.onset, state["counts"]).copy()
        v = state["v"]        # the same operations, in the same order, as the floating-point process model
        v[:] = v * (1.0 - (1.0 - pop.node.alpha)) + a
        if t >= pop.latency:
            v += state["bias"]
        return v.copy()

    def final_states(self, state: dict) -> dict[str, np.ndarray]:
        return {"v": state["v"]}

    # -- Lava ------------------------------------------------------------------------------------------
    def lava_process(self, pop, fixed: bool, shape: tuple[int, ...], layout):
        from spikes.deploy.processes.integrator import LeakyIntegrator

        if fixed:
            return LeakyIntegrator(shape=shape, dv=pop.dv, bias_mant=layout(pop.bias_mant), bias_exp=pop.bias_exp,
                                   onset=pop.onset)
        return LeakyIntegrator(shape=shape, dv=1.0 - pop.node.alpha, bias_mant=layout(pop.bias), onset=pop.latency)

    def lava_output(self, proc):
        return proc.v_out

    def lava_states(self, proc) -> dict[str, np.ndarray]:
        return {"v": np.asarray(proc.v.get())}
