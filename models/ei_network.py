"""E/I rate networks with somatic and dendritic inhibition (after Galloni, Peddada, Chennawar & Milstein 2025), and
their LIF variant: the networks that learn with BTSP (:mod:`spikes.learning.btsp`) or, for comparison, backprop.

Each hidden layer ``l`` has three populations: excitatory units E (``n_e``), somatic inhibition SomaI (``n_s``)
and dendritic inhibition DendI (``n_d``); the output layer has E and SomaI. Every weight is stored as a magnitude
in ``[0, w_max]`` and takes the sign of its presynaptic population (Dale's law as weight bounds: excitatory
sources add, inhibitory sources subtract). With ``r_pre`` the rates of the layer below (the input features for
layer 1), the soma of each population relaxes (``tau``, ``forward_steps`` Euler steps, :func:`rate_step`)::

    x_E = W_in r_pre - W_es r_S + nudge          (nudge = 0 in the forward phase)
    x_S = W_sin r_pre + W_se r_E
    x_D = W_de r_E

and E's dendrite sums the top-down input from the layer above minus dendritic inhibition::

    D = clamp(B r_E(l+1) - W_ed r_D, -1, 1).

``B`` (``top_down``): ``fixed`` random, ``tied`` (``B = W_in(l+1)^T``, times ``top_down_scale``) or ``learned``
by the rule. Rates are ReLU (``r_max`` = inf; BTSP clamps its eligibility traces to [0, 1]). ``W_in`` (all
layers) is sparse: a hidden E unit has input synapses from a random fraction ``connectivity`` of the layer below
(``mask``; learning never adds one), so that units differ beyond the mean input that feedforward inhibition
takes away; the output layer is fully connected. ``W_in``, ``W_es``, ``W_ed`` and a learned ``B`` are
parameters; the other projections are fixed buffers. The model's output (``forward``) is the output layer's E
rates ``(B, n_out)``.

``neuron = "lif"``: every population is a LIF population (``spikes.neurons.neuron_step``, subtractive reset,
threshold 1) run for ``lif_steps`` steps per phase on the same currents (the layer below enters as its rates,
within a layer the populations exchange spikes of the previous step); a population's rate is its spike count
divided by ``lif_steps`` (so at most 1). With ``lif_alpha = 1`` (no leak) the count rate approximates
``clamp(x, 0, 1)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from spikes.learning.rule import Batch, Objective
from spikes.neurons.dynamics import NeuronParameters, initial_state, neuron_step
from spikes.neurons.rate import RateParameters, rate_step
from spikes.options import option
from spikes.surrogates import Surrogate

TOP_DOWN = ("fixed", "tied", "learned")
NEURONS = ("rate", "lif")


class LayerState(NamedTuple):
    """One layer after a phase: its input rates ``pre``, the rates of E, SomaI, DendI (``d`` empty in the output
    layer) and the somatic states ``v_e, v_s, v_d`` the next phase starts from."""

    pre: torch.Tensor
    e: torch.Tensor
    s: torch.Tensor
    d: torch.Tensor
    v_e: torch.Tensor
    v_s: torch.Tensor
    v_d: torch.Tensor


def _uniform(shape, scale: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(*shape, generator=g) * scale


class EILayer(nn.Module):
    """One layer's populations and projections (module docstring). ``n_d = 0``: no dendritic inhibition (output)."""

    def __init__(self, n_pre: int, n_e: int, n_s: int, n_d: int, w_max: float, w_max_i: float, g: torch.Generator,
                 input_gain: float = 1.0, inhibition: float = 0.8, lateral: float = 0.1, feedforward: float = 1.0,
                 connectivity: float = 1.0):
        super().__init__()
        if min(n_pre, n_e, n_s) < 1 or n_d < 0:
            raise ValueError(f"EILayer: population sizes must be >= 1 (n_d >= 0), got n_pre={n_pre}, n_e={n_e}, "
                             f"n_s={n_s}, n_d={n_d}")
        self.n_pre, self.n_e, self.n_s, self.n_d = n_pre, n_e, n_s, n_d
        self.w_max, self.w_max_i = w_max, w_max_i
        # mean drive of a unit ~ input_gain * mean(r_pre): uniform magnitudes of mean input_gain / n_pre
        # sparse random fan-in (fraction `connectivity`), so that units differ beyond the mean input
        mask = (torch.rand(n_e, n_pre, generator=g) < connectivity).to(torch.float32)
        self.register_buffer("mask", mask)     # which synapses exist: learning never creates new ones
        self.w_in = nn.Parameter(_uniform((n_e, n_pre), min(2.0 * input_gain / (n_pre * connectivity), w_max), g)
                                 * mask)
        # SomaI sees the same mean input as E and takes away about `inhibition` of E's mean drive
        self.register_buffer("w_sin", _uniform((n_s, n_pre), min(2.0 * input_gain * feedforward / n_pre, w_max), g))
        self.register_buffer("w_se", _uniform((n_s, n_e), min(2.0 * lateral / n_e, w_max), g))
        # SomaI -> E is learned (homeostatic inhibitory plasticity of the rule; backprop trains it as a weight)
        self.w_es = nn.Parameter(_uniform((n_e, n_s), min(2.0 * inhibition / n_s, w_max_i), g))
        if n_d:
            self.register_buffer("w_de", _uniform((n_d, n_e), min(2.0 / n_e, w_max), g))
            self.w_ed = nn.Parameter(torch.zeros(n_e, n_d))     # learned: starts without dendritic inhibition
        else:
            self.register_buffer("w_de", torch.zeros(0, n_e))
            self.register_parameter("w_ed", None)

    def currents(self, pre: torch.Tensor, e: torch.Tensor, s: torch.Tensor, nudge) -> tuple[torch.Tensor, ...]:
        """The somatic input currents ``(x_E, x_S, x_D)`` (module docstring)."""
        x_e = pre @ self.w_in.T - s @ self.w_es.T
        if nudge is not None:
            x_e = x_e + nudge
        x_s = pre @ self.w_sin.T + e @ self.w_se.T
        x_d = e @ self.w_de.T
        return x_e, x_s, x_d

    def constrain_(self) -> None:
        """Dale's law as weight bounds: every learned magnitude back into ``[0, w_max]`` (``w_max_i`` for the
        inhibitory W_es and W_ed); input synapses only where ``mask`` has them."""
        with torch.no_grad():
            self.w_in.clamp_(0.0, self.w_max).mul_(self.mask)
            self.w_es.clamp_(0.0, self.w_max_i)
            if self.w_ed is not None:
                self.w_ed.clamp_(0.0, self.w_max_i)


class EINetwork(nn.Module):
    """E/I network ``n_in -> hidden... -> n_out`` (module docstring)."""

    def __init__(self, n_in: int, n_out: int, hidden: tuple[int, ...] = (128, 64), inhibitory_fraction: float = 0.1,
                 w_max: float = 2.0, w_max_i: float = 1.0, tau: float = 3.0, forward_steps: int = 15,
                 top_down: str = "tied", top_down_scale: float = 1.0, neuron: str = "rate", lif_steps: int = 20,
                 lif_alpha: float = 1.0, input_gain: float = 8.0, inhibition: float = 1.0, lateral: float = 0.1,
                 feedforward: float = 1.0, connectivity: float = 0.15, r_max: float = float("inf"), seed: int = 0):
        super().__init__()
        if top_down not in TOP_DOWN:
            raise ValueError(f"EINetwork: top_down must be one of {TOP_DOWN}, got {top_down!r}")
        if neuron not in NEURONS:
            raise ValueError(f"EINetwork: neuron must be one of {NEURONS}, got {neuron!r}")
        if not hidden or min(hidden) < 1:
            raise ValueError(f"EINetwork: hidden must list at least one layer size >= 1, got {hidden!r}")
        g = torch.Generator().manual_seed(seed)
        self.n_in, self.n_out, self.hidden = n_in, n_out, tuple(hidden)
        self.top_down, self.top_down_scale, self.neuron = top_down, top_down_scale, neuron
        self.rate = RateParameters(tau=tau, r_max=r_max)
        self.forward_steps, self.lif_steps = forward_steps, lif_steps
        self.lif = NeuronParameters(alpha=lif_alpha, v_th=1.0, reset="subtract", surrogate=Surrogate())
        sizes = (n_in, *hidden)
        layers = []
        for k, n_e in enumerate(hidden):
            n_i = max(1, round(inhibitory_fraction * n_e))
            layers.append(EILayer(sizes[k], n_e, n_i, n_i, w_max, w_max_i, g, input_gain, inhibition, lateral,
                                  feedforward, connectivity))
        # the output layer is fully connected (its units compare whole hidden patterns)
        layers.append(EILayer(hidden[-1], n_out, max(1, round(inhibitory_fraction * n_out)) if n_out > 10 else n_out,
                              0, w_max, w_max_i, g, input_gain, inhibition, lateral, feedforward, 1.0))
        self.layers = nn.ModuleList(layers)
        # top-down weights into hidden layer k's dendrites from layer k+1's E: (n_e(k), n_e(k+1))
        self.td = nn.ParameterList()
        for k in range(len(hidden)):
            upper = self.layers[k + 1].n_e
            b = _uniform((hidden[k], upper), min(2.0 / upper, w_max), g) if top_down != "tied" else torch.zeros(0)
            self.td.append(nn.Parameter(b, requires_grad=top_down == "learned"))

    # --------------------------------------------------------------------------------------------- dynamics
    def settle(self, k: int, pre: torch.Tensor, nudge: torch.Tensor | None = None,
               start: LayerState | None = None) -> LayerState:
        """Layer ``k``'s phase on input rates ``pre (B, n_pre)``: ``forward_steps`` relaxation steps (rate units) or
        ``lif_steps`` LIF steps (rates = counts / steps), from rest or from ``start``'s somatic states."""
        layer = self.layers[k]
        b = pre.shape[0]
        if start is None:
            zeros = lambda n: pre.new_zeros(b, n)  # noqa: E731
            e, s, d, v_e, v_s, v_d = (zeros(layer.n_e), zeros(layer.n_s), zeros(layer.n_d),
                                      zeros(layer.n_e), zeros(layer.n_s), zeros(layer.n_d))
        else:
            e, s, d, v_e, v_s, v_d = start.e, start.s, start.d, start.v_e, start.v_s, start.v_d
        if self.neuron == "rate":
            for _ in range(self.forward_steps):
                x_e, x_s, x_d = layer.currents(pre, e, s, nudge)
                e, v_e = rate_step(x_e, v_e, self.rate)
                s, v_s = rate_step(x_s, v_s, self.rate)
                d, v_d = rate_step(x_d, v_d, self.rate)
            return LayerState(pre, e, s, d, v_e, v_s, v_d)
        counts = [pre.new_zeros(b, n) for n in (layer.n_e, layer.n_s, layer.n_d)]
        states = [None if start is None else _lif_state(v) for v in (v_e, v_s, v_d)]
        spikes = [pre.new_zeros(b, n) for n in (layer.n_e, layer.n_s, layer.n_d)]
        for _ in range(self.lif_steps):
            currents = layer.currents(pre, spikes[0], spikes[1], nudge)
            for j in range(3):
                spikes[j], states[j] = neuron_step(currents[j], states[j], self.lif)
                counts[j] = counts[j] + spikes[j]
        e, s, d = (c / self.lif_steps for c in counts)
        return LayerState(pre, e, s, d, states[0].v, states[1].v, states[2].v)

    def forward_phase(self, x: torch.Tensor) -> list[LayerState]:
        """Every layer's forward phase, bottom to top."""
        states, pre = [], x
        for k in range(len(self.layers)):
            st = self.settle(k, pre)
            states.append(st)
            pre = st.e
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output E rates ``(B, n_out)`` of the forward phase (differentiable: backprop trains the same network)."""
        return self.forward_phase(x.to(self.layers[0].w_in.dtype))[-1].e

    def top_down_weight(self, k: int) -> torch.Tensor:
        """``B (n_e(k), n_e(k+1))`` of hidden layer ``k`` (``tied``: ``top_down_scale W_in(k+1)^T``)."""
        if self.top_down == "tied":
            return self.top_down_scale * self.layers[k + 1].w_in.T
        return self.td[k]

    def dendritic_state(self, k: int, upper: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``clamp(B r_upper - W_ed r_D, -1, 1)`` of hidden layer ``k``."""
        layer = self.layers[k]
        return (upper @ self.top_down_weight(k).T - d @ layer.w_ed.T).clamp(-1.0, 1.0)

    def learned_weights(self) -> dict[str, torch.Tensor]:
        """Every learned weight by name (what the rule changes and ``spikes compare`` reports)."""
        out = {}
        for k, layer in enumerate(self.layers):
            out[f"layers.{k}.w_in"] = layer.w_in
            out[f"layers.{k}.w_es"] = layer.w_es
            if layer.w_ed is not None:
                out[f"layers.{k}.w_ed"] = layer.w_ed
        if self.top_down == "learned":
            out.update({f"td.{k}": b for k, b in enumerate(self.td)})
        return out

    def constrain_(self) -> None:
        """Bounds of the learned top-down weights (the layers bound their own)."""
        if self.top_down == "learned":
            with torch.no_grad():
                for b in self.td:
                    b.clamp_(0.0, self.layers[0].w_max)


def _lif_state(v: torch.Tensor):
    """A LIF population's state with membrane ``v`` (a phase that continues from the previous one)."""
    return initial_state(v.shape, v.dtype, v.device)._replace(v=v)


# ------------------------------------------------------------------------------------------ options, objective
@dataclass(frozen=True)
class EIOptions:
    """The ``[model]`` table of kinds ``ei_network`` (rate units) and ``ei_lif`` (LIF populations)."""

    hidden: tuple = option((128, 64), "E units per hidden layer (SomaI and DendI: inhibitory_fraction of them)")
    inhibitory_fraction: float = option(0.1, "SomaI and DendI units per E unit of a layer", min=0.0,
                                        min_exclusive=True, max=1.0)
    w_max: float = option(2.0, "upper bound of excitatory weights (Dale's law: all weights are magnitudes >= 0)",
                          min=0.0, min_exclusive=True)
    w_max_i: float = option(1.0, "upper bound of the learned dendritic-inhibition weights", min=0.0,
                            min_exclusive=True)
    tau: float = option(3.0, "rate units: relaxation time constant in steps", min=1.0)
    forward_steps: int = option(15, "rate units: relaxation steps per phase", min=1)
    top_down: str = option("tied", "top-down weights B into the dendrites: fixed random, tied (W^T) or learned",
                           choices=TOP_DOWN)
    top_down_scale: float = option(1.0, "tied top-down: B = scale W^T", min=0.0, min_exclusive=True)
    lif_steps: int = option(20, "LIF populations: steps per phase (rates = counts / steps)", min=1)
    lif_alpha: float = option(1.0, "LIF populations: membrane decay per step (1 = integrate-and-fire)", min=0.0,
                              max=1.0)
    loss: str = option("mse", "the objective's loss: mse against one-hot rates (BTSP's target), or ce, softmax "
                              "cross-entropy on the rates (for backprop)", choices=("mse", "ce"))
    input_gain: float = option(8.0, "initial mean feedforward drive per unit of mean input rate", min=0.0,
                               min_exclusive=True)
    inhibition: float = option(1.0, "SomaI -> E: about this fraction of E's mean drive is taken away at the start",
                               min=0.0)
    lateral: float = option(0.1, "E -> SomaI within a layer (feedback inhibition), relative to the input's share",
                            min=0.0)
    feedforward: float = option(1.0, "input -> SomaI (feedforward inhibition), relative to E's input", min=0.0)
    connectivity: float = option(0.15, "fraction of existing input synapses of a hidden E unit (learning never adds "
                                       "synapses; the output layer is fully connected)", min=0.0, min_exclusive=True,
                                 max=1.0)


class RateTargetObjective(Objective):
    """Classification by output rates ``y (B, K)`` against one-hot targets (BTSP's instructive signal is
    ``target - y``); decision ``argmax y``. ``loss``: ``"mse"``, ``mean_b sum_k (y_k - onehot_k)^2 / 2`` (what
    BTSP's target means), or ``"ce"``, softmax cross-entropy on the rates (what backprop trains best: with MSE its
    gradient silences the ReLU outputs, which then get no gradient). The logged metric ``loss`` is always MSE."""

    def __init__(self, loss: str = "mse"):
        if loss not in ("mse", "ce"):
            raise ValueError(f"RateTargetObjective: loss must be 'mse' or 'ce', got {loss!r}")
        self.kind = loss

    def loss(self, output, batch: Batch) -> torch.Tensor:
        if self.kind == "ce":
            return F.cross_entropy(output, batch.y)
        target = F.one_hot(batch.y, output.shape[1]).to(output.dtype)
        return 0.5 * ((output - target) ** 2).sum(1).mean()

    def metric_sums(self, output, batch: Batch) -> dict[str, float]:
        y = output.detach()
        target = F.one_hot(batch.y, y.shape[1]).to(y.dtype)
        return {"accuracy": float((y.argmax(1) == batch.y).sum()), "loss": float(0.5 * ((y - target) ** 2).sum())}
