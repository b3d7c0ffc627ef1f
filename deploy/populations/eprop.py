"""The ``EpropNeurons`` kind: e-prop's LIF/ALIF neurons (custom Lava process ``EpropNeuron``).

Float (torch units, Lava timing; ``a_in[t]`` the projections' sum, ``z`` the previous step's spikes)::

    v = v (1 - dv) + a_in - v_th z + [t >= onset] bias          dv = 1 - alpha
    a = a (1 - da) + z                                          da = 1 - rho
    z = (v > v_th + beta_j a) and r == 0;   r = n_ref if z else max(r - 1, 0)

(``spikes.graph.eprop_neurons``: the reset enters the next step undecayed, v keeps integrating while
refractory.) Fixed point, Loihi style (int64 arithmetic, every state clipped to its register)::

    i = wrap24(a_in << 6)                                        24-bit input, wraps counted
    v = trunc(v (4096 - dv) / 4096) + i - z (vth << 6) + [t >= onset] (bias_mant << bias_exp)
    v = clip(v, -(2**23 - 1), 2**23 - 1)                         24-bit membrane, saturations counted
    a = trunc(a (4096 - da) / 4096) + (z << a_frac);  a = min(a, 2**23 - 1)   24-bit trace, saturations counted
    theta = (vth << 6) + ((beta_mant_j a) >> beta_shift)
    z = (v > theta) and r == 0;  r = n_ref if z else max(r - 1, 0)

``trunc(p / 4096)`` is ``sign(p) (|p| >> 12)``: Lava LIF's rounding toward zero; decays are 12 bit
(``dv = round(4096 (1 - alpha))``, ``da = round(4096 (1 - rho))``, in 0..4096).

Float <-> fixed mapping, with the population's scale ``S`` (as Lava's LIF: ``vth = round(v_th S)``)::

    v_fixed = 64 S v        a_fixed = 2**a_frac a        weights w = round_even(W S / 2**e)
    beta_mant_j = round(64 S beta_j 2**(beta_shift - a_frac))     (12-bit unsigned mantissa)
    bias_mant << bias_exp = round(64 S bias)

so ``theta_fixed = 64 S (v_th + beta_j a)`` up to rounding (the increment is floored, < 1 unit of v).
Quantisation picks ``S`` as the largest value with

- ``vth <= vth_target`` (default 2**11: 11 bits of threshold resolution) and ``vth <= 2**17 - 1``;
- the worst-case input of one step fits the 24-bit input: ``64 S I_max <= headroom (2**23 - 1)``
  (``I_max`` = max over neurons of |bias| + sum |W| of every incoming projection, recurrent included);
- the largest adaptive threshold the membrane can reach fits the 24-bit membrane, so a neuron that fires
  in float can fire in fixed point: ``64 S min(v_th + max beta a_max, I_max / (1 - alpha)) <= headroom
  (2**23 - 1)``, ``a_max = 1 / (1 - rho_q**(n_ref+1))`` the trace of a neuron firing as fast as its
  refractory period allows (``trace_horizon / (n_ref + 1)`` steps when ``rho_q = 1``), ``I_max / (1 - alpha)``
  the highest v any input can drive (a threshold above it is never crossed, in float or fixed point);
- conv weights fit (``S max|W_conv| <= 254``).

The membrane itself is not bounded by the scale (as with Lava's LIF: a long run of strong input of one
sign can drive v past 24 bits; it saturates, counted in ``sim``'s ``_overflow``). The refractory counter
is 8 bits (``n_ref <= 255``). Quantisation refuses (``ValueError`` naming the layer) a scale whose
threshold has fewer than ``min_vth`` (default 64) integer steps. ``a_frac`` (<= 12) is the finest trace
resolution at which ``a_max`` fits 24 bits; ``beta_shift`` (<= 24) the finest at which the largest
``beta_mant`` fits 12 bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikes.graph.eprop_neurons import EpropNeurons
from spikes.deploy.fixed_point import V_LIMIT, VTH_MAX, WEIGHT_MAX, bias_mantissa
from spikes.deploy.populations.base import FixedPointPopulation, PopulationKind
from spikes.deploy.steps import eprop_fixed_step, eprop_float_step

# Lava (the optional extra spikes[lava], heavy) loads only in ``lava_process``, which imports the kind's process.

A_FRAC_MAX = 12
BETA_MANT_MAX = 2**12 - 1
BETA_SHIFT_MAX = 24
MIN_VTH = 64
N_REF_MAX = 2**8 - 1        # 8-bit refractory counter


@dataclass(eq=False)
class QEprop(FixedPointPopulation):
    """A fixed-point e-prop population (equations in the module docstring)."""

    name: str
    shape: tuple[int, ...]
    dv: int
    da: int
    vth: int
    a_frac: int
    beta_mant: np.ndarray      # (N,) int, 12-bit unsigned
    beta_shift: int
    n_ref: int
    bias_mant: np.ndarray      # (N,) int
    bias_exp: int
    scale: float
    latency: int
    onset: int

    kind = "eprop"

    def decode_v(self, v: np.ndarray) -> np.ndarray:
        """Fixed-point membrane -> float units of the torch model."""
        return np.asarray(v, dtype=np.float64) / (64.0 * self.scale)

    def decode_a(self, a: np.ndarray) -> np.ndarray:
        """Fixed-point adaptation trace -> spikes (e-prop's ``a``)."""
        return np.asarray(a, dtype=np.float64) / 2.0**self.a_frac


def _trace_max(rho: float, n_ref: int, horizon: float) -> float:
    """The largest trace ``a`` of a neuron that fires every ``n_ref + 1`` steps (from ``a = 0``)."""
    period = n_ref + 1
    if rho >= 1.0:
        return horizon / period + 1.0
    return 1.0 / (1.0 - rho**period)


class EpropKind(PopulationKind):
    name = "eprop"
    node_type = EpropNeurons
    qtype = QEprop

    def fold_bias(self, node: EpropNeurons, const: np.ndarray) -> np.ndarray:
        return const            # a constant input enters v as is every step: a bias on v, exact from the onset

    def quantize(self, pop, i_max: float, conv_max: float, options: dict) -> tuple[QEprop, dict]:
        node: EpropNeurons = pop.node
        vth_target, headroom = options.get("vth_target", 2**11), options.get("headroom", 1.0)
        min_vth = options.get("min_vth", MIN_VTH)
        if node.n_ref > N_REF_MAX:
            raise ValueError(f"layer {pop.name!r}: n_ref={node.n_ref} refractory steps do not fit the 8-bit refractory "
                             f"counter (at most {N_REF_MAX})")
        dv = int(min(max(round(4096 * (1.0 - node.alpha)), 0), 4096))
        da = int(min(max(round(4096 * (1.0 - node.rho)), 0), 4096))
        rho_q = 1.0 - da / 4096
        beta = node.beta_vector()
        beta_max = float(beta.max(initial=0.0))
        a_max = _trace_max(rho_q, node.n_ref, float(options.get("trace_horizon", 1024)))
        theta_max = node.v_th + beta_max * a_max
        v_reach = i_max / (1.0 - node.alpha) if node.alpha < 1.0 else math.inf    # v never rises above this
        theta_bound = max(min(theta_max, v_reach), node.v_th)
        limits = {"threshold resolution (vth_target)": vth_target / node.v_th, "17-bit threshold": VTH_MAX / node.v_th,
                  "adaptive threshold in 24 bits": headroom * V_LIMIT / 64.0 / theta_bound}
        if i_max > 0:
            limits["worst-case input in 24 bits"] = headroom * V_LIMIT / 64.0 / i_max
        if conv_max > 0:
            limits["8-bit conv weights"] = WEIGHT_MAX / conv_max
        binding = min(limits, key=limits.get)
        s = limits[binding]
        vth = int(min(max(round(node.v_th * s), 0), VTH_MAX))
        if vth < min_vth:
            raise ValueError(f"layer {pop.name!r}: e-prop threshold would get only {vth} integer steps (< min_vth="
                             f"{min_vth}): the scale is bound by the {binding} (worst-case input {i_max:.3g}, largest "
                             f"adaptive threshold {theta_max:.3g} in units of v); reduce the weights or beta")
        a_frac = 0
        while a_frac < A_FRAC_MAX and a_max * 2.0**(a_frac + 1) <= V_LIMIT:
            a_frac += 1
        per_unit = 64.0 * s * beta / 2.0**a_frac          # threshold units per trace unit
        beta_shift = 0
        if beta_max > 0:
            while beta_shift < BETA_SHIFT_MAX and round(per_unit.max() * 2.0**(beta_shift + 1)) <= BETA_MANT_MAX:
                beta_shift += 1
        beta_mant = np.clip(np.round(per_unit * 2.0**beta_shift), 0, BETA_MANT_MAX).astype(np.int64)
        total_bias = pop.bias * s * 64.0
        bias_mant, bias_exp = bias_mantissa(total_bias)
        q = QEprop(pop.name, pop.shape, dv, da, vth, a_frac, beta_mant, beta_shift, node.n_ref, bias_mant, bias_exp,
                   s, pop.latency, pop.latency)
        adaptive = beta > 0
        beta_q = beta_mant * 2.0**(a_frac - beta_shift) / (64.0 * s)
        report = {"vth": vth, "dv": dv, "da": da, "a_frac": a_frac, "beta_shift": beta_shift, "n_ref": node.n_ref,
                  "scale_bound": binding, "vth_rel_error": abs(vth - node.v_th * s) / (node.v_th * s),
                  "alpha_error": abs((1.0 - dv / 4096) - node.alpha), "rho_error": abs(rho_q - node.rho),
                  "beta_max_rel_error": float(np.max(np.abs(beta_q[adaptive] - beta[adaptive]) / beta[adaptive]))
                  if adaptive.any() else 0.0,
                  "bias_max_error": float(np.abs(bias_mant * 2.0**bias_exp - total_bias).max(initial=0) / (64 * s)),
                  "worst_case_input_bits": math.log2(max(i_max * s * 64, 1)) + 1,
                  "threshold_max_bits": math.log2(max(theta_bound * s * 64, 1)) + 1,
                  "trace_max_bits": math.log2(max(a_max * 2**a_frac, 1)) + 1}
        return q, report

    # -- sim -------------------------------------------------------------------------------------------
    def init_state(self, pop, m: int, fixed: bool) -> dict[str, np.ndarray]:
        dt = np.int64 if fixed else np.float64
        reps = m // pop.size
        state = {"v": np.zeros(m, dt), "a": np.zeros(m, dt), "z": np.zeros(m, dt), "r": np.zeros(m, np.int64),
                 "bias": np.tile(np.asarray(pop.bias, dtype=dt), reps)}
        if fixed:
            state["beta"] = np.tile(pop.beta_mant.astype(np.int64), reps)
            state["counts"] = np.zeros((m, 2), np.int64)
        else:
            state["beta"] = np.tile(pop.node.beta_vector(), reps)
        return state

    def step(self, pop, a: np.ndarray, state: dict, t: int, fixed: bool) -> np.ndarray:
        if fixed:
            return eprop_fixed_step(a, state["v"], state["a"], state["z"], state["r"], pop.dv, pop.da, pop.vth,
                                    state["beta"], pop.beta_shift, pop.a_frac, pop.n_ref, state["bias"], t, pop.onset,
                                    state["counts"])
        node = pop.node
        return eprop_float_step(a, state["v"], state["a"], state["z"], state["r"], 1.0 - node.alpha, 1.0 - node.rho,
                                node.v_th, state["beta"], node.n_ref, state["bias"], t, pop.latency)

    def final_states(self, state: dict) -> dict[str, np.ndarray]:
        return {k: state[k] for k in ("v", "a", "z", "r")}

    # -- Lava ------------------------------------------------------------------------------------------
    def lava_process(self, pop, fixed: bool, shape: tuple[int, ...], layout):
        from spikes.deploy.processes.eprop_neuron import EpropNeuron

        if fixed:
            return EpropNeuron(shape=shape, dv=pop.dv, da=pop.da, vth=pop.vth, beta_mant=layout(pop.beta_mant),
                               beta_shift=pop.beta_shift, a_frac=pop.a_frac, n_ref=pop.n_ref,
                               bias_mant=layout(pop.bias_mant), bias_exp=pop.bias_exp, onset=pop.onset)
        node = pop.node
        return EpropNeuron(shape=shape, dv=1.0 - node.alpha, da=1.0 - node.rho, vth=node.v_th,
                           beta_mant=layout(node.beta_vector()), n_ref=node.n_ref, bias_mant=layout(pop.bias),
                           onset=pop.latency)

    def lava_output(self, proc):
        return proc.s_out

    def lava_states(self, proc) -> dict[str, np.ndarray]:
        return {k: np.asarray(getattr(proc, k).get()) for k in ("v", "a", "z", "r")}
