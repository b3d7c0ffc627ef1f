"""Behavioral timescale synaptic plasticity with top-down dendritic gating (``--rule btsp``), after Galloni,
Peddada, Chennawar & Milstein (2025; reference code EIANN, rule ``BTSP_19``). No backward pass, no optimizer.

A sample goes through the network twice. Forward phase: every layer relaxes on its input (the model's
``forward_phase``). Backward phase, top to bottom:

- output layer: dendritic state ``D = clamp(target - y, -1, 1)``; every output unit has plateau ``P = D``;
- hidden layer ``l``: ``D = clamp(B r_E(l+1) - W_ed r_D, -1, 1)`` from the (already nudged) layer above.
  Positive plateaus go to units with ``D > 0``: the ``max_pop_fraction`` largest (``selection = "sorted"``), or
  each with probability ``D`` and then at most that fraction (``"sampled"``). Negative plateaus go to units with
  ``D < 0`` whose forward rate exceeds ``neg_rate_th``. ``P = D`` on those units, 0 elsewhere;
- EIANN's options: ``relu_gate`` (units silent in the forward phase, output units included, get no plateau) and
  ``cap_negative`` (negative plateaus, too, go to at most ``max_pop_fraction`` of the layer, most negative first);
- the plateaus nudge the soma (``x_E += P``) and the layer relaxes again from its forward state, so the layer
  below sees the nudged rates through its top-down weights.

Weight update of every feedforward projection ``W (post j, pre i)``, with ``ET_i = clamp(r_pre_i, 0, 1)`` the
eligibility trace (the presynaptic rate after the backward phase) and ``q`` a smooth ramp from 0 at ``dep_th`` to 1
at ``dep_th + dep_width`` (:func:`q_dep`)::

    F(P, ET)_ij = P+_j [(w_max - W_ij) ET_i - dep_ratio W_ij q(ET_i)] + P-_j ET_i        (P+ = max(P, 0), P- = min(P, 0))
    dW = eta [F(P(t), ET(t)) + c (F(P(t), ET(t-1)) + F(P(t-1), ET(t)))],      c = temporal_discount

where ``t - 1`` is the previous sample (the rule keeps the last sample's plateaus and traces between batches). A
positive plateau pulls a unit's weights toward ``w_max ET / (ET + dep_ratio)``: toward the pattern it should
answer; a negative one weakens its active inputs. Only units with a plateau (now or at the previous sample) change.

Dendritic inhibition learns to cancel the forward top-down input (EIANN's dendritic loss): with ``D_fwd`` the
dendritic state of the forward phase, ``dW_ed = eta_d D_fwd^T r_D`` (more inhibition where the dendrite is
depolarised), so after learning ``D`` mostly carries the change the nudge made above. Learned top-down weights
(``top_down = "learned"``) follow a temporally contrastive Hebbian rule ``dB = eta_b r_E(l)^T (r_E(l+1)^nudged -
r_E(l+1)^fwd)``. Everything stays within its bounds ``[0, w_max]`` (Dale's law: magnitudes never change sign).

A batch of B samples applies the sum of its B per-sample updates at once (computed with the same weights);
``train.batch_size = 1`` is the online rule. Networks: anything with the interface of
``spikes.models.ei_network.EINetwork`` (``layers``, ``forward_phase``, ``settle``, ``dendritic_state``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from spikes.learning.rule import Batch, LearningRule, Objective, StepOutput, constrain, register_rule
from spikes.options import option

SELECTIONS = ("sorted", "sampled")
LAYER_CHOICES = ("all", "top")


def q_dep(et: torch.Tensor, threshold: float, width: float) -> torch.Tensor:
    """Smooth ramp ``q = s^2 (3 - 2 s)``, ``s = clamp((ET - threshold) / width, 0, 1)``: 0 below ``threshold``, 1
    above ``threshold + width`` (the gate of depression at active synapses)."""
    s = ((et - threshold) / width).clamp(0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def btsp_delta(w: torch.Tensor, et: torch.Tensor, plateau: torch.Tensor, w_max: float, dep_ratio: float,
               dep_threshold: float, dep_width: float) -> torch.Tensor:
    """``sum_b F(P_b, ET_b)`` (module docstring) for weights ``w (J, I)``, traces ``et (B, I)`` and plateaus
    ``plateau (B, J)``: the batch's summed update before the learning rate."""
    pos, neg = plateau.clamp(min=0.0), plateau.clamp(max=0.0)
    potentiation = (w_max - w) * (pos.T @ et)
    depression = dep_ratio * w * (pos.T @ q_dep(et, dep_threshold, dep_width))
    return potentiation - depression + neg.T @ et


def select_plateaus(dendritic: torch.Tensor, rate: torch.Tensor, max_pop_fraction: float, neg_rate_th: float,
                    selection: str = "sorted", generator: torch.Generator | None = None, relu_gate: bool = False,
                    cap_negative: bool = False) -> torch.Tensor:
    """Plateaus ``P (B, J)`` of a hidden layer from its dendritic states and forward rates (module docstring).
    ``relu_gate``: units silent in the forward phase (rate 0) get no plateau of either sign. ``cap_negative``:
    negative plateaus, too, go to at most ``max_pop_fraction`` of the layer, the most negative ``D`` first (both as
    EIANN's ``BTSP_19``)."""
    if selection not in SELECTIONS:
        raise ValueError(f"select_plateaus: selection must be one of {SELECTIONS}, got {selection!r}")
    if relu_gate:
        dendritic = torch.where(rate > 0, dendritic, torch.zeros_like(dendritic))
    candidates = dendritic > 0
    if selection == "sampled":
        draw = torch.rand(dendritic.shape, generator=generator, dtype=dendritic.dtype)
        candidates = candidates & (draw < dendritic)
    n_max = int(max_pop_fraction * dendritic.shape[1])
    if n_max < dendritic.shape[1]:
        ranked = torch.where(candidates, dendritic, torch.full_like(dendritic, -float("inf")))
        keep = torch.zeros_like(candidates)
        if n_max > 0:
            keep.scatter_(1, ranked.topk(n_max, dim=1).indices, True)
        candidates = candidates & keep
    negative = (dendritic < 0) & (rate > neg_rate_th)
    if cap_negative and n_max < dendritic.shape[1]:
        ranked = torch.where(negative, -dendritic, torch.full_like(dendritic, -float("inf")))
        keep = torch.zeros_like(negative)
        if n_max > 0:
            keep.scatter_(1, ranked.topk(n_max, dim=1).indices, True)
        negative = negative & keep
    return torch.where(candidates | negative, dendritic, torch.zeros_like(dendritic))


def shifted(now: torch.Tensor, before: torch.Tensor | None) -> torch.Tensor:
    """Each sample's predecessor: ``[before, now[0], ..., now[B-2]]`` (zeros when there was no previous sample)."""
    first = torch.zeros_like(now[:1]) if before is None else before.reshape(1, -1).to(now.dtype)
    return torch.cat([first, now[:-1]], 0)


@register_rule
class BTSP(LearningRule):
    """Behavioral timescale synaptic plasticity with dendritic gating (E/I networks; no backprop)."""

    name = "btsp"
    uses_optimizer = False
    data_parallel = False

    @dataclass(frozen=True)
    class Options:
        lr: float = option(0.003, "BTSP learning rate of the hidden layers (EIANN, MNIST: 0.0101)", min=0.0)
        lr_output: float = option(0.025, "BTSP learning rate of the output layer (EIANN: 0.0258)", min=0.0)
        temporal_discount: float = option(0.0162, "weight of the previous-sample terms pre(t-1) P(t), pre(t) P(t-1)",
                                          min=0.0)
        dep_ratio: float = option(1.0, "depression at active synapses relative to potentiation", min=0.0)
        dep_threshold: float = option(0.01, "eligibility above which depression starts", min=0.0)
        dep_width: float = option(0.01, "eligibility range over which depression ramps to full", min=0.0,
                                  min_exclusive=True)
        max_pop_fraction: float = option(0.05, "largest fraction of a hidden layer with a positive plateau per sample",
                                         min=0.0, max=1.0)
        neg_rate_th: float = option(0.0, "negative plateaus only in units whose forward rate exceeds this", min=0.0)
        selection: str = option("sorted", "positive plateaus: the largest dendritic states, or drawn with "
                                          "probability D", choices=SELECTIONS)
        relu_gate: bool = option(False, "units silent in the forward phase get no plateau, output units included "
                                        "(EIANN's relu_gate; false: any unit with D != 0 may get one)")
        cap_negative: bool = option(False, "negative plateaus also go to at most max_pop_fraction of a hidden layer, "
                                           "the most negative D first (EIANN; false: every D < 0 unit above "
                                           "neg_rate_th)")
        lr_dendritic: float = option(0.01, "learning rate of the dendritic inhibition W_ed (cancels the forward "
                                           "top-down input)", min=0.0)
        lr_top_down: float = option(0.01, "learning rate of learned top-down weights (model.top_down = learned)",
                                    min=0.0)
        lr_inhibitory: float = option(0.0003, "homeostatic plasticity of SomaI -> E (Vogels-Sprekeler): dW_es = lr r_S "
                                            "(r_E - target_rate) pulls each E unit's rate toward its target", min=0.0)
        target_rate: float = option(0.1, "hidden E units' target rate of the homeostatic inhibition (output units: "
                                         "1 / n_out, the one-hot target's mean)", min=0.0)
        layers: str = option("all", "which layers learn: all, or only the output layer (top: the control that gives "
                                    "the hidden layers no credit)", choices=LAYER_CHOICES)

    def __init__(self, options=None):
        super().__init__(options)
        self.previous: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}    # layer -> (last ET, last P)
        self.generator = torch.Generator()
        self.last_plateaus: dict[int, torch.Tensor] = {}     # layer -> plateaus (B, n_e) of the last batch
        self.initial: dict[str, torch.Tensor] = {}           # learned weights at the start (weight_change)
        self.sums: dict[str, float] = {}                     # running sums of plateau fractions and rates

    def setup(self, model, optimizer, seed: int = 0) -> None:
        super().setup(model, optimizer, seed)
        self.generator.manual_seed(seed + 18)
        self.initial = {k: w.detach().clone() for k, w in model.learned_weights().items()}

    def check(self, model, objective: Objective) -> None:
        for attr in ("layers", "forward_phase", "settle", "dendritic_state", "top_down_weight"):
            if not hasattr(model, attr):
                raise ValueError(f"rule 'btsp' trains E/I networks with dendrites (model kinds ei_network, ei_lif); "
                                 f"{type(model).__name__} has no {attr}")

    @torch.no_grad()
    def train_step(self, model, batch: Batch, objective: Objective) -> StepOutput:
        o = self.options
        layers = model.layers
        top = len(layers) - 1
        x = batch.x.to(layers[0].w_in.dtype)
        if x.dim() != 2 or x.shape[1] != layers[0].n_pre:
            raise ValueError(f"rule 'btsp': the batch must be feature vectors (B, {layers[0].n_pre}), got "
                             f"{tuple(x.shape)}")
        fwd = model.forward_phase(x)
        y = fwd[top].e
        target = F.one_hot(batch.y, y.shape[1]).to(y.dtype)

        # backward phase, top to bottom: plateaus, somatic nudge, re-equilibration
        out_plateau = (target - y).clamp(-1.0, 1.0)
        if o.relu_gate:
            out_plateau = torch.where(y > 0, out_plateau, torch.zeros_like(out_plateau))
        plateaus: dict[int, torch.Tensor] = {top: out_plateau}
        nudged = {top: model.settle(top, fwd[top].pre, plateaus[top], fwd[top])}
        for k in range(top - 1, -1, -1):
            dend = model.dendritic_state(k, nudged[k + 1].e, fwd[k].d)
            plateaus[k] = select_plateaus(dend, fwd[k].e, o.max_pop_fraction, o.neg_rate_th, o.selection,
                                          self.generator, o.relu_gate, o.cap_negative)
            nudged[k] = model.settle(k, fwd[k].pre, plateaus[k], fwd[k])

        self.last_plateaus = plateaus
        extra: dict[str, float] = {}
        for k in range(top, -1, -1):
            if o.layers == "top" and k != top:
                continue
            layer = layers[k]
            et = (x if k == 0 else nudged[k - 1].e).clamp(0.0, 1.0)
            p = plateaus[k]
            args = (layer.w_max, o.dep_ratio, o.dep_threshold, o.dep_width)
            delta = btsp_delta(layer.w_in, et, p, *args)
            if o.temporal_discount:
                et_prev, p_prev = self.previous.get(k, (None, None))
                delta = delta + o.temporal_discount * (btsp_delta(layer.w_in, shifted(et, et_prev), p, *args)
                                                       + btsp_delta(layer.w_in, et, shifted(p, p_prev), *args))
            self.previous[k] = (et[-1].clone(), p[-1].clone())
            layer.w_in.add_(delta, alpha=o.lr_output if k == top else o.lr)
            extra[f"plateau_fraction_{k}"] = float((p != 0).float().mean())
        for k in range(top + 1):
            for key, value in ((f"plateau_fraction/{k}", float((plateaus[k] != 0).float().sum())),
                               (f"rate/{k}", float(fwd[k].e.mean(1).sum())), (f"samples/{k}", float(y.shape[0]))):
                self.sums[key] = self.sums.get(key, 0.0) + value

        if o.lr_inhibitory:
            for k in range(top + 1):
                if o.layers == "top" and k != top:
                    continue
                rho = 1.0 / layers[k].n_e if k == top else o.target_rate
                layers[k].w_es.add_((fwd[k].e - rho).T @ fwd[k].s, alpha=o.lr_inhibitory)
        if o.layers == "all":
            for k in range(top):
                layer = layers[k]
                dend_fwd = model.dendritic_state(k, fwd[k + 1].e, fwd[k].d)
                layer.w_ed.add_(dend_fwd.T @ fwd[k].d, alpha=o.lr_dendritic)
                extra[f"dendritic_state_{k}"] = float(dend_fwd.abs().mean())
                if model.top_down == "learned":
                    model.td[k].add_(fwd[k].e.T @ (nudged[k + 1].e - fwd[k + 1].e), alpha=o.lr_top_down)
        constrain(model)
        return StepOutput(float(objective.loss(y, batch)), y, extra)

    def measurements(self, model) -> dict[str, dict[str, float]]:
        """``weight_change`` per learned weight (``|W - W_start| / |W_start|``, Frobenius), and over training the
        fraction of units with a plateau per sample and the mean forward E rate, per layer."""
        out: dict[str, dict[str, float]] = {"weight_change": {}}
        for name, w in model.learned_weights().items():
            w0 = self.initial.get(name)
            if w0 is not None:
                out["weight_change"][name] = float((w.detach() - w0).norm() / w0.norm().clamp(min=1e-12))
        for measure in ("plateau_fraction", "rate"):
            values = {}
            for k, layer in enumerate(model.layers):
                n = self.sums.get(f"samples/{k}", 0.0)
                if n:
                    per = layer.n_e if measure == "plateau_fraction" else 1
                    values[f"layers.{k}"] = self.sums[f"{measure}/{k}"] / (n * per)
            if values:
                out[measure] = values
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"previous": {k: (et.clone(), p.clone()) for k, (et, p) in self.previous.items()},
                "generator": self.generator.get_state(), "initial": {k: v.clone() for k, v in self.initial.items()},
                "sums": dict(self.sums)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.previous = {int(k): (et.clone(), p.clone()) for k, (et, p) in state.get("previous", {}).items()}
        if "generator" in state:
            self.generator.set_state(state["generator"])
        self.initial = {k: v.clone() for k, v in state.get("initial", self.initial).items()}
        self.sums = dict(state.get("sums", {}))
