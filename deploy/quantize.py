"""Loihi 2 fixed-point quantisation of a lowered :class:`~spikes.deploy.network.Network`.

Per population P a scale ``S`` maps float units to the integer units of the threshold, so that
``vth = round(v_th S)`` and the state is ``v_fixed = 64 S v_float`` (Lava left-shifts inputs and the
threshold by 6). Every incoming dense/sparse projection gets its own weight exponent ``e`` and weights
``w = round_even(W S / 2**e)`` in [-254, 254]: Lava's Dense/Sparse keep only even values for mixed signs and
floor odd ones, so we round to even ourselves (the formats: ``spikes.deploy.fixed_point``). Conv ignores
``weight_exp``: ``e = 0`` and ``S`` is capped so the largest conv weight fits. ``S`` is the largest value such that

- ``vth <= vth_target`` (default 2**11) and ``vth <= 131071`` (17-bit threshold),
- the worst-case input (all sources active, |w| summed per neuron, over ``1 - alpha_syn``) fits the 24-bit
  current: ``64 S max_I / (1 - alpha_syn) < 2**23`` (``headroom`` scales this bound),
- conv weights fit: ``S max|W_conv| <= 254``.

Decays (12 bit): ``du = round(4096 (1 - alpha_syn)) - 1``, ``dv = round(4096 (1 - alpha))``.
Bias: ``bias_mant << bias_exp = round(64 S bias)``, 13-bit mantissa, one exponent in 0..7 per population.
Refused in ``Neurons`` (Lava LIF) populations (naming the layer): ``reset='subtract'``, ``beta > 0`` (ALIF),
refractory periods. Other kinds pick their own scale and integers (``spikes.deploy.populations``; e-prop's
LIF/ALIF neurons with subtractive reset, adaptation and refractoriness: ``populations.eprop``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from spikes.deploy.fixed_point import quantize_weights, weight_exponent
from spikes.deploy.network import Network
from spikes.deploy.populations import kind_of
from spikes.deploy.populations.lif import QPopulation  # noqa: F401  (the LIF kind's fixed-point population)


def check_lava(pop) -> None:
    """Raise for what the population's kind cannot express on Lava, naming the population."""
    kind_of(pop).check_lava(pop)


@dataclass(eq=False)
class QProjection:
    src: str
    dst: str
    kind: str
    weight: np.ndarray | sp.csr_matrix   # int64
    weight_exp: int
    delay: int
    recurrent: bool
    conv: object = None


@dataclass(eq=False)
class QNetwork:
    inputs: dict[str, tuple[int, ...]]
    populations: dict[str, object]            # QPopulation (LIF) or another kind's fixed-point population
    projections: list[QProjection]
    outputs: dict[str, str]
    report: list[dict] = field(default_factory=list)
    sequence: list[str] = field(default_factory=list)

    def order(self) -> list[str]:
        return list(self.sequence) if self.sequence else sorted(self.populations, key=lambda p: self.populations[p].latency)

    def incoming(self, pop: str) -> list[QProjection]:
        return [p for p in self.projections if p.dst == pop]


def quantize(net: Network, vth_target: int = 2**11, headroom: float = 1.0,
             input_max: float | dict[str, float] = 1.0, **kind_options) -> QNetwork:
    """The fixed-point network and a per-layer report (``QNetwork.report``) of the quantisation error.

    ``input_max``: the largest graded value of each input (spikes: 1), for the overflow bound. Each
    population's kind (``spikes.deploy.populations``) picks its scale and integer parameters; further
    keyword options go to the kinds (e.g. ``integrator_horizon``).
    """
    graded_max: dict[str, float] = {}      # graded populations: largest output (float units) and integer unit
    graded_unit: dict[str, float] = {}
    qpops: dict[str, object] = {}
    qprojs: list[QProjection] = []
    report = []
    options = {"vth_target": vth_target, "headroom": headroom, **kind_options}
    for name in net.order():
        pop = net.populations[name]
        kind = kind_of(pop)
        kind.check_lava(pop)
        incoming = net.incoming(name)
        bound = np.abs(pop.bias).copy()
        for proj in incoming:
            src_max = (input_max.get(proj.src, 1.0) if isinstance(input_max, dict) else input_max) \
                if proj.src in net.inputs else graded_max.get(proj.src, 1.0)
            bound = bound + proj.row_l1() * src_max
        i_max = float(bound.max()) if bound.size else 0.0
        conv_max = max((pr.max_abs() for pr in incoming if pr.kind == "conv"), default=0.0)
        qpop, kind_report = kind.quantize(pop, i_max, conv_max, options)
        qpops[name] = qpop
        s = qpop.scale
        if kind.graded:   # its integer output v stands for v * unit in float units
            graded_max[name] = kind_report.get("output_max", 1.0)
            graded_unit[name] = 1.0 / (64.0 * s)
        w_err, w_ref, exps = [], [], []
        for proj in incoming:
            ws = s * graded_unit.get(proj.src, 1.0)
            m = proj.max_abs()
            exp = 0 if proj.kind == "conv" else weight_exponent(m * ws)
            qw, err, ref = quantize_weights(proj.weight, ws, exp)
            w_err.append(np.ravel(err))
            w_ref.append(np.ravel(ref))
            exps.append(exp)
            qprojs.append(QProjection(proj.src, name, proj.kind, qw, exp, proj.delay, proj.recurrent, proj.conv))
        err = np.concatenate(w_err) if w_err else np.zeros(0)
        ref = np.concatenate(w_ref) if w_ref else np.zeros(0)
        report.append({"layer": name, "kind": kind.name, "scale": s, "weight_exps": exps,
                       "weight_rel_rms_error": float(np.sqrt((err**2).sum() / max((ref**2).sum(), 1e-300)))
                       if err.size else 0.0, **kind_report})
    return QNetwork(dict(net.inputs), qpops, qprojs, dict(net.outputs), report, net.order())


def format_report(report: list[dict]) -> str:
    """The per-layer quantisation report as a text table."""
    lines = [f"{'layer':<16} {'scale':>9} {'vth':>6} {'du':>5} {'dv':>5} {'w_exp':>10} {'w_err':>7} {'vth_err':>8} "
             f"{'a_err':>7} {'in_bits':>7}"]
    for r in report:
        vth_err = f"{r['vth_rel_error']:>8.2%}" if "vth_rel_error" in r else f"{'-':>8}"
        lines.append(f"{r['layer']:<16} {r['scale']:>9.3g} {r.get('vth', '-'):>6} {r.get('du', '-'):>5} "
                     f"{r.get('dv', '-'):>5} {','.join(map(str, r['weight_exps'])):>10} "
                     f"{r['weight_rel_rms_error']:>7.2%} {vth_err} {r.get('alpha_error', 0.0):>7.1e} "
                     f"{r.get('worst_case_input_bits', 0.0):>7.1f}")
    return "\n".join(lines)
