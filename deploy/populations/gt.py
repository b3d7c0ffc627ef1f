"""The ``gt`` and ``gt_potential`` kinds: growth-transform populations (graph ``GT``: spikes; ``GTPotential``:
potential), custom Lava process ``spikes.deploy.processes.gt.GTNeurons``.

Fixed point (equations in ``spikes.deploy.gt_kernels``). Float <-> fixed, with ``F`` fraction bits
per population::

    V    = round(2**F v / vc)            potential, |V| <= 2**F (sign and spike preserved: s = V > 0)
    G    = 2**F g / vc                   input current, bias and g in the same units: b = (a_in << 6) + bias
    S    = 2**F / (64 vc)                the kind's scale: incoming weights are W S / 2**e, a graded output
                                         V stands for V / (64 S) = V vc / 2**F
    Q    ~ Q_int 2**q_exp                8-bit even weights in [-254, 254] with one exponent (Loihi's format)
    LAM  = round(2**F lam / vc),  PSI = round(2**F i_psi / vc),  V0 = round(2**F v0 / vc)
    A    = round(4096 a) in 1..4096,  bias_mant << bias_exp = round(2**F bias / vc) (13-bit mantissa)

``F`` is the largest value (at most 19, see the kernels) such that the worst case ``|g| <= max |b| + vc
max_i sum_j |Q_ij| + i_psi`` (times ``headroom``) and ``LAM`` fit the signed 24-bit range, the bias fits its
mantissa and exponent, and conv weights fit 8 bits; option ``gt_frac_bits`` lowers it. ``F < 8`` is refused.

Timing: the population holds ``v0`` and sends zeros until ``onset`` = its latency (lowering's
``spikes.deploy.network``), so its first step meets its first input, and the bias (folded layer biases)
acts from ``bias_onset`` = latency + ``input_delay``, when torch's delayed input (which carries it) starts.
The aligned backends then equal the torch graph step by step, also between GT layers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg import block_diag

from spikes.graph.gt import GT, GTPotential
from spikes.deploy.fixed_point import BIAS_MANT_MAX, WEIGHT_MAX, bias_mantissa, quantize_weights, weight_exponent
from spikes.deploy import gt_kernels as K
from spikes.deploy.populations.base import FixedPointPopulation, PopulationKind

# Lava (the optional extra spikes[lava], heavy) loads only in ``lava_process``, which imports the kind's process.

FRAC_BITS_MIN = 8
BIAS_MAX = BIAS_MANT_MAX * 2**7          # 13-bit mantissa << exponent 7


@dataclass(eq=False)
class QGT(FixedPointPopulation):
    """A fixed-point GT population (integers as in the module docstring); outputs spikes."""

    name: str
    shape: tuple[int, ...]
    q: np.ndarray            # (N, N) int64, even, in [-254, 254]
    q_exp: int
    bias_mant: np.ndarray    # (N,) int64
    bias_exp: int
    lam: int
    psi: int
    frac_bits: int
    a: np.ndarray            # (N,) int64 in 1..4096
    v0: int
    scale: float             # 2**frac_bits / (64 vc)
    latency: int
    onset: int
    bias_onset: int

    kind = "gt"

    def decode(self, values: np.ndarray) -> np.ndarray:
        """Fixed-point potentials -> float units (``v = V vc / 2**F``)."""
        return np.asarray(values, dtype=np.float64) / (64.0 * self.scale)


@dataclass(eq=False)
class QGTPotential(QGT):
    """A fixed-point GT population whose output is its potential ``V`` (graded)."""

    kind = "gt_potential"


def _block_diagonal(q: np.ndarray, copies: int) -> np.ndarray:
    """``kron(I_copies, q)``, dense, the dtype of ``q`` (off-block entries exact zeros)."""
    return block_diag(*([np.asarray(q)] * copies)).astype(np.asarray(q).dtype)


def _floor_log2(x: float) -> int:
    return math.floor(math.log2(x)) if x > 0 else K.FRAC_BITS_MAX


class GTKind(PopulationKind):
    name = "gt"
    node_type = GT
    qtype = QGT
    graded = False

    # -- packing ---------------------------------------------------------------------------------------
    def pack(self, pop, copies: int, shape: tuple[int, ...] | None = None):
        """Copies side by side (``PopulationKind.pack``, flat); the coupling becomes block-diagonal, ``kron(I, q)``,
        so each copy's neurons couple only among themselves."""
        if shape is not None and len(shape) != 1:
            raise ValueError(f"layer {pop.name!r}: a packed GT population is flat, got shape {tuple(shape)}")
        packed = super().pack(pop, copies, shape)
        if getattr(pop, "node", None) is None:          # fixed point: the coupling is a field of the population
            packed = replace(packed, q=_block_diagonal(pop.q, copies))
        return packed

    def pack_node(self, node, copies: int, shape: tuple[int, ...] | None = None):
        return super().pack_node(node, copies, shape, q=_block_diagonal(node.q, copies))

    def coupling_entries(self, pop, copies: int = 1) -> int:
        return (copies * pop.size) ** 2

    # -- quantisation ----------------------------------------------------------------------------------
    def frac_bits(self, pop, i_max: float, conv_max: float, options: dict) -> tuple[int, float]:
        """``(F, worst-case |g|)`` (module docstring)."""
        node: GT = pop.node
        vc = node.vc
        g_max = i_max + vc * float(np.abs(node.q).sum(axis=1).max()) + node.i_psi
        bounds = {"max": K.FRAC_BITS_MAX,
                  "g": _floor_log2(options.get("headroom", 1.0) * K.G_LIMIT * vc / g_max),
                  "lam": _floor_log2(K.G_LIMIT * vc / node.lam)}
        b = float(np.abs(pop.bias).max(initial=0))
        if b > 0:
            bounds["bias"] = _floor_log2(BIAS_MAX * vc / b)
        if conv_max > 0:
            bounds["conv"] = _floor_log2(WEIGHT_MAX * 64 * vc / conv_max)
        f = min(bounds.values())
        forced = options.get("gt_frac_bits")
        if forced is not None:
            if int(forced) != forced or forced > f:
                raise ValueError(f"layer {pop.name!r}: gt_frac_bits={forced} is above the {f} bits that fit "
                                 f"(limits: {bounds})")
            f = int(forced)
        if f < FRAC_BITS_MIN:
            limit = min(bounds, key=bounds.get)
            raise ValueError(f"layer {pop.name!r}: only {f} fraction bits fit the 24-bit GT state (limited by "
                             f"{limit!r}: worst-case |g| = {g_max:.3g}, lam = {node.lam}, max |bias| = {b:.3g}); "
                             f"at least {FRAC_BITS_MIN} are needed: scale the inputs or Q down")
        return f, g_max

    def quantize(self, pop, i_max: float, conv_max: float, options: dict) -> tuple[QGT, dict]:
        node: GT = pop.node
        f, g_max = self.frac_bits(pop, i_max, conv_max, options)
        unit = 2.0**f / node.vc                       # integer units per float unit of v and g
        q_exp = weight_exponent(float(np.abs(node.q).max()))
        q_int, q_err, _ = quantize_weights(node.q, 1.0, q_exp)
        bias_mant, bias_exp = bias_mantissa(pop.bias * unit)
        a = np.clip(np.round(node.a_vector() * K.A_ONE), 1, K.A_ONE).astype(np.int64)
        qtype = self.qtype
        qp = qtype(pop.name, pop.shape, q_int, int(q_exp), bias_mant, int(bias_exp), int(round(node.lam * unit)),
                   int(round(node.i_psi * unit)), int(f), a, int(round(node.v0 * unit)), float(unit / 64.0),
                   int(pop.latency), int(pop.latency), int(pop.latency + node.input_delay))
        report = {"frac_bits": f, "q_exp": int(q_exp),
                  "q_rel_rms_error": float(np.sqrt((q_err**2).sum() / max((node.q**2).sum(), 1e-300))),
                  "q_max_error": float(np.abs(q_err).max()), "lam": qp.lam, "psi": qp.psi, "bias_exp": int(bias_exp),
                  "bias_max_error": float(np.abs(qp.bias / unit - pop.bias).max(initial=0)),
                  "alpha_error": float(np.abs(a / K.A_ONE - node.a_vector()).max()),
                  "worst_case_input_bits": math.log2(max(g_max * unit, 1)) + 1, "output_max": node.vc}
        return qp, report

    # -- sim -------------------------------------------------------------------------------------------
    def init_state(self, pop, m: int, fixed: bool) -> dict[str, np.ndarray]:
        if fixed:
            state = {"v": np.full(m, pop.v0, np.int64), "counts": np.zeros((m, 2), np.int64)}
        else:
            state = {"v": np.full(m, pop.node.v0, np.float64)}
        state["bias"] = np.asarray(pop.bias, dtype=np.int64 if fixed else np.float64)
        return state

    def run(self, pop, acc: np.ndarray, state: dict, fixed: bool, t0: int = 0) -> np.ndarray:
        n = pop.size
        t_steps, m = acc.shape
        batch = m // n
        v = state["v"].reshape(batch, n)
        out_s = np.zeros((t_steps, batch, n), np.uint8)
        if fixed:
            out_v = np.zeros((t_steps, batch, n), np.int64)
            K.gt_fixed_run(np.ascontiguousarray(acc, np.int64).reshape(t_steps, batch, n), v, pop.q.astype(np.int64),
                           pop.q_exp, state["bias"], pop.lam, pop.psi, pop.frac_bits, pop.a.astype(np.int64),
                           pop.onset, pop.bias_onset, t0, out_s, out_v, state["counts"].reshape(batch, n, 2))
        else:
            node = pop.node
            out_v = np.zeros((t_steps, batch, n), np.float64)
            onset = pop.latency
            K.gt_float_run(np.ascontiguousarray(acc, np.float64).reshape(t_steps, batch, n), v, node.q, state["bias"],
                           node.lam, node.vc, node.i_psi, node.a_vector(), onset, onset + node.input_delay, t0,
                           out_s, out_v)
        out = out_v if self.graded else out_s
        return out.reshape(t_steps, m)

    def step(self, pop, a: np.ndarray, state: dict, t: int, fixed: bool) -> np.ndarray:
        return self.run(pop, a.reshape(1, -1), state, fixed, t0=t)[0]

    def final_states(self, state: dict) -> dict[str, np.ndarray]:
        return {"v": state["v"]}

    # -- Lava ------------------------------------------------------------------------------------------
    def lava_process(self, pop, fixed: bool, shape: tuple[int, ...], layout):
        from spikes.deploy.processes.gt import GTNeurons

        K.warm(fixed)
        if fixed:
            return GTNeurons(q=pop.q, bias=pop.bias_mant, bias_exp=pop.bias_exp, lam=pop.lam, i_psi=pop.psi,
                             a=pop.a, v0=pop.v0, frac_bits=pop.frac_bits, q_exp=pop.q_exp, onset=pop.onset,
                             bias_onset=pop.bias_onset)
        node = pop.node
        return GTNeurons(q=node.q, bias=pop.bias, lam=node.lam, vc=node.vc, i_psi=node.i_psi, a=node.a_vector(),
                         v0=node.v0, onset=pop.latency, bias_onset=pop.latency + node.input_delay)

    def lava_output(self, proc):
        return proc.s_out

    def lava_states(self, proc) -> dict[str, np.ndarray]:
        return {"v": np.asarray(proc.v.get())}


class GTPotentialKind(GTKind):
    name = "gt_potential"
    node_type = GTPotential
    qtype = QGTPotential
    graded = True

    def lava_output(self, proc):
        return proc.v_out
