"""Model kinds by name: how the trainer builds a model, which objective it trains on, which rule is its default.

A :class:`ModelKind` is the one place where a model meets the generic machinery:

- ``Options``: a dataclass of the constructor's settings (the ``[model]`` table of a run config; defaults are
  the demo's), validated by the config schema;
- ``resolve(options, train_set)``: the constructor arguments, with what depends on the data filled in (the
  input shape, the class count, StereoSpike's readout bias = the training set's mean depth). They are what a
  checkpoint stores, so a model is rebuilt from a checkpoint without its data;
- ``construct(kwargs)``: the model, weights drawn from ``kwargs["seed"]``;
- ``objective(kwargs, spike_penalty)``: the task's loss and metrics on the model's output
  (:class:`spikes.learning.rule.Objective`);
- ``graph_input_shape``: the per-sample input shape of the model's deploy graph (``model.to_graph``), and
  ``prepare_input`` the same reshaping of a time-first batch.

Built in: ``conv_snn``, ``mlp_snn`` (classifiers on event frames), ``rsnn`` (e-prop's LIF/ALIF network with a
leaky readout), ``stereospike`` (depth from stereo events), ``gt_network`` (growth-transform classifier),
``mlp`` (a plain ANN on feature vectors, the learning-rule studies' baseline), ``rate_rnn`` (a leaky tanh RNN on
sequences, the rate network of task studies).
Bring your own: ``package.module:factory`` names any function returning an ``nn.Module`` built from spikes
layers and neurons (see :func:`kind_of`); it is trained on spike counts like the classifiers.
"""
from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from spikes.options import option
from spikes.learning.eprop_losses import SequenceCrossEntropy
from spikes.learning.rule import Batch, Objective
from spikes.metrics.probe import SPIKING, is_spiking
from spikes.models.classifiers import CLASSIFIERS, NEURON_KINDS, READOUTS
from spikes.models.ctrnn import CTRNN, CTRNNOptions, LIFPopulation, LIFPopulationOptions, OscillationObjective
from spikes.models.ei_network import EINetwork, EIOptions, RateTargetObjective
from spikes.models.gt_network import ARCHITECTURES, GTNetwork, GTNetworkConfig
from spikes.models.mlp import ACTIVATIONS as MLP_ACTIVATIONS, MLP
from spikes.models.rate_rnn import (LEARN as RATE_RNN_LEARN, READOUTS as RATE_RNN_READOUTS, RateRNN,
                                    SignedTargetObjective)
from spikes.models.rsnn import RSNN, RSNNConfig
from spikes.models.spike_slab import NEURONS as SPIKE_SLAB_NEURONS, ReadoutObjective, SpikeSlabRNN
from spikes.models.stereospike.loss import depth_loss
from spikes.models.stereospike.metrics import MVSEC_FB, abs_error_sum, one_pixel_count
from spikes.models.stereospike.ann import ACTIVATIONS, StereoUNetANN
from spikes.models.stereospike.model import StereoSpike
from spikes.models.theta_network import CODINGS as THETA_CODINGS, ThetaNetwork, TTFSObjective


# ----------------------------------------------------------------------------------------------- objectives
class SpikeCountObjective(Objective):
    """Classification on per-class scores ``(B, K)`` (output spike counts or the membrane readout):
    ``loss = CE(scores, y) + spike_penalty * sum(spikes) / numel(spikes)`` over every spiking layer's output
    (the mean firing rate, differentiable through the surrogate gradient)."""

    def __init__(self, spike_penalty: float = 0.0):
        self.spike_penalty = spike_penalty

    def forward(self, model: nn.Module, batch: Batch) -> Any:
        if not self.spike_penalty or not model.training:
            return model(batch.x), None
        outs: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda mod, inp, out: outs.append(out if isinstance(mod, SPIKING)
                                                                              else mod.spike_output(out)))
                 for m in model.modules() if is_spiking(m)]
        try:
            scores = model(batch.x)
        finally:
            for h in hooks:
                h.remove()
        rate = sum(o.sum() for o in outs) / sum(o.numel() for o in outs) if outs else None
        return scores, rate

    @staticmethod
    def scores(output: Any) -> torch.Tensor:
        """``(B, K)`` scores; a model that returns its output spikes ``(T, B, K)`` is scored by their counts."""
        scores = output[0]
        return scores.sum(0) if scores.dim() == 3 else scores

    def loss(self, output: Any, batch: Batch) -> torch.Tensor:
        scores, rate = self.scores(output), output[1]
        loss = F.cross_entropy(scores, batch.y)
        return loss if rate is None else loss + self.spike_penalty * rate

    def metric_sums(self, output: Any, batch: Batch) -> dict[str, float]:
        scores = self.scores(output).detach()
        return {"accuracy": float((scores.argmax(1) == batch.y).sum()),
                "loss": float(F.cross_entropy(scores, batch.y, reduction="sum"))}


class SequenceObjective(Objective):
    """Classification by a leaky readout ``y (T, B, K)`` over a sequence: softmax cross-entropy at every step of
    the loss mask (:class:`SequenceCrossEntropy`), decision by the largest mean softmax, plus e-prop's firing-rate
    regulariser ``c_reg sum_j (f_j - f0)^2`` (``f_j`` spikes per step of neuron j, ``f0 = f_target dt / 1000``)."""

    has_online = True

    def __init__(self, n_classes: int, c_reg: float, f_target: float, dt: float):
        self.n_classes, self.c_reg, self.f_target, self.dt = n_classes, c_reg, f_target, dt

    def sequence_loss(self, batch: Batch) -> SequenceCrossEntropy:
        return SequenceCrossEntropy(batch.y, self.n_classes, batch.x.shape[0], batch.mask)

    def online(self, batch: Batch) -> SequenceCrossEntropy:
        return self.sequence_loss(batch)

    def loss(self, output: Any, batch: Batch) -> torch.Tensor:
        y, z = output
        task = self.sequence_loss(batch).total(y)
        if not self.c_reg:
            return task
        f = z.mean(dim=(0, 1))
        return task + self.c_reg * ((f - self.f_target * self.dt / 1000.0) ** 2).sum()

    def metric_sums(self, output: Any, batch: Batch) -> dict[str, float]:
        y = output[0].detach()
        loss = self.sequence_loss(batch)
        return {"accuracy": float(batch.size - loss.errors(y).sum()), "loss": float(loss.total(y)) * batch.size}


class DepthObjective(Objective):
    """StereoSpike's multi-scale depth loss (scale-invariant + ``grad_weight`` gradient matching on every readout
    scale, plus ``spike_penalty`` times the spike penalty of the bottleneck and decoder skips); metric: mean depth
    error in metres over the valid pixels (lower is better), and the one-pixel accuracy."""

    metric_name: ClassVar[str] = "mde"
    higher_is_better: ClassVar[bool] = False

    def __init__(self, grad_weight: float, lam: float, spike_penalty: float, spiking: bool, fb: float = MVSEC_FB):
        self.grad_weight, self.lam, self.fb = grad_weight, lam, fb
        self.beta = spike_penalty if spiking else 0.0

    def loss(self, output: Any, batch: Batch) -> torch.Tensor:
        return depth_loss(output.depths, batch.y, self.grad_weight, self.lam, output.penalised, self.beta)

    def metric_sums(self, output: Any, batch: Batch) -> dict[str, float]:
        err, n = abs_error_sum(output.depth.detach(), batch.y)
        hit = one_pixel_count(output.depth.detach(), batch.y, self.fb)[0]
        # per-pixel means: the trainer divides by the pixel count ("_weight") instead of the sample count
        return {"mde": err, "one_pixel_accuracy": float(hit), "_weight": float(n)}


class FewestSpikesObjective(Objective):
    """Growth-transform classification: the network runs once per candidate label and predicts the label whose
    run spikes least (no loss to differentiate: the GT rule is local). Training reports spikes per sample."""

    differentiable = False

    def loss(self, output: Any, batch: Batch) -> torch.Tensor:
        raise NotImplementedError("a growth-transform network has no differentiable loss: train it with --rule gt")

    def forward(self, model, batch: Batch) -> Any:
        return model.spike_counts(batch.x)                       # (B, M) spikes for every candidate label

    def metric_sums(self, output: Any, batch: Batch) -> dict[str, float]:
        return {"accuracy": float((output.argmin(1) == batch.y).sum())}


# ------------------------------------------------------------------------------------------------ the kinds
@dataclass(frozen=True)
class ModelKind:
    """How the trainer handles one kind of model (module docstring)."""

    name: str
    description: str
    options: type
    default_rule: str
    data: str                                     # "frames", "stereo" or "tabular"
    resolve: Callable[[Any, Any], dict[str, Any]]
    construct: Callable[[dict[str, Any]], Any]
    objective: Callable[[dict[str, Any], float], Objective]
    graph_input_shape: Callable[[tuple[int, ...]], tuple[int, ...]] = lambda shape: tuple(shape)
    prepare_input: Callable[[torch.Tensor], torch.Tensor] = lambda x: x


@dataclass(frozen=True)
class ClassifierOptions:
    width: int = option(8, "channels of the first conv layer (conv_snn) or hidden units (mlp_snn)", min=1)
    neuron: str = option("lif", "spiking neuron kind", choices=tuple(NEURON_KINDS))
    readout: str = option("count", "loss on output spike counts or on the output integrator's membrane", choices=READOUTS)
    gain: float = option(2.0, "initial weight scale (times Kaiming uniform); conv_snn needs about 8 to fire at the start "
                            "(the demo's setting)", min=0.0, min_exclusive=True)


def _classifier(name: str) -> ModelKind:
    def resolve(options: ClassifierOptions, train_set) -> dict[str, Any]:
        return {"input_shape": list(train_set.input_shape), "n_classes": int(train_set.n_classes), **asdict(options)}

    def construct(kw: dict[str, Any]) -> nn.Module:
        kw = dict(kw)
        torch.manual_seed(kw.pop("seed", 0))
        return CLASSIFIERS[name](tuple(kw.pop("input_shape")), kw.pop("n_classes"), **kw)

    return ModelKind(name, CLASSIFIERS[name].__doc__.strip().splitlines()[0], ClassifierOptions, "bptt", "frames",
                     resolve, construct, lambda kw, penalty: SpikeCountObjective(penalty))


@dataclass(frozen=True)
class RSNNOptions:
    n_rec: int = option(64, "recurrent neurons", min=1)
    n_adaptive: int = option(32, "of which ALIF (adaptive threshold; the last n_adaptive)", min=0)
    dt: float = option(1.0, "time step in ms", min=0.0, min_exclusive=True)
    tau_m: float = option(20.0, "membrane time constant, ms", min=0.0, min_exclusive=True)
    tau_a: float = option(200.0, "threshold adaptation time constant, ms", min=0.0, min_exclusive=True)
    tau_out: float = option(20.0, "readout time constant, ms", min=0.0, min_exclusive=True)
    v_th: float = option(0.6, "threshold", min=0.0, min_exclusive=True)
    n_ref: int = option(2, "refractory steps", min=0)
    c_reg: float = option(0.1, "firing-rate regulariser weight c_reg sum_j (f_j - f_target)^2", min=0.0)
    f_target: float = option(10.0, "target rate of the regulariser, Hz", min=0.0)


def _rsnn_resolve(options: RSNNOptions, train_set) -> dict[str, Any]:
    if options.n_adaptive > options.n_rec:
        raise ValueError(f"model.n_adaptive ({options.n_adaptive}) must be <= model.n_rec ({options.n_rec})")
    return {"n_in": int(math.prod(train_set.input_shape)), "n_out": int(train_set.n_classes), **asdict(options)}


def _rsnn_config(kw: dict[str, Any]) -> RSNNConfig:
    return RSNNConfig(**{k: kw[k] for k in ("n_in", "n_rec", "n_out", "n_adaptive", "dt", "tau_m", "tau_a", "tau_out",
                                             "v_th", "n_ref")})


RSNN_KIND = ModelKind(
    "rsnn", "LIF/ALIF recurrent SNN with a leaky readout (e-prop's network); inputs flattened per step",
    RSNNOptions, "eprop", "frames", _rsnn_resolve,
    lambda kw: RSNN(_rsnn_config(kw), seed=kw.get("seed", 0)),
    lambda kw, penalty: SequenceObjective(kw["n_out"], kw["c_reg"], kw["f_target"], kw["dt"]),
    graph_input_shape=lambda shape: (int(math.prod(shape)),),
    prepare_input=lambda x: x.flatten(2))


@dataclass(frozen=True)
class StereoOptions:
    snn: bool = option(True, "StereoSpike (true) or its ANN twin with BatchNorm (false)")
    base: int = option(8, "channels of the first layer (paper 32)", min=1)
    levels: int = option(3, "encoder levels (paper 4)", min=1)
    n_res: int = option(2, "SEW residual blocks", min=0)
    neuron: str = option("if", "one-step neuron of the SNN", choices=("if", "plif"))
    grad_weight: float = option(0.5, "weight of the gradient-matching term", min=0.0)
    lam: float = option(0.5, "scale-invariance weight of the regression term (paper 1)", min=0.0)
    init_depth: float = option(0.0, "readout bias in metres (0 = the training set's mean depth)", min=0.0)
    activation: str = option("sigmoid", "unit activation of the ANN twin (snn = false)", choices=tuple(ACTIVATIONS))
    fb: float = option(0.0, "focal length x baseline (px m) of the one-pixel accuracy (0 = the data set's, else "
                            f"MVSEC's {MVSEC_FB})", min=0.0)


def _stereo_resolve(options: StereoOptions, train_set) -> dict[str, Any]:
    kw = asdict(options)
    kw["init_depth"] = options.init_depth or train_set.mean_depth()
    kw["fb"] = float(options.fb or getattr(train_set, "fb", None) or MVSEC_FB)
    return {"input_size": list(train_set.input_size), "in_channels": int(train_set.in_channels), **kw}


def _stereo_construct(kw: dict[str, Any]) -> nn.Module:
    """StereoSpike (``snn``) or its ANN twin; checkpoints written before ``activation`` existed get the sigmoid."""
    torch.manual_seed(kw.get("seed", 0))
    common = {"base": kw["base"], "levels": kw["levels"], "n_res": kw["n_res"], "in_channels": int(kw["in_channels"]),
              "input_size": tuple(kw["input_size"]), "init_depth": float(kw["init_depth"] or 0.0)}
    if kw["snn"]:
        return StereoSpike(neuron=kw["neuron"], **common)
    return StereoUNetANN(activation=kw.get("activation", "sigmoid"), **common)


STEREO_KIND = ModelKind(
    "stereospike", "StereoSpike spiking U-Net (or its ANN twin): dense depth from stereo event counts",
    StereoOptions, "bptt", "stereo", _stereo_resolve, _stereo_construct,
    lambda kw, penalty: DepthObjective(kw["grad_weight"], kw["lam"], penalty, kw["snn"], kw.get("fb") or MVSEC_FB))


@dataclass(frozen=True)
class GTOptions:
    architecture: str = option("network2", "GT architecture", choices=ARCHITECTURES)
    iterations: int = option(100, "GT iterations per sample", min=1)
    eta1: float = option(1e-4, "learning rate of layer 1", min=0.0)
    eta2: float = option(1e-3, "learning rate of layer 2 (network2/3)", min=0.0)
    layer1_epochs: int = option(5, "network2: epochs layer 1 learns before it is frozen", min=0)
    i_psi: float = option(3.0, "penalty current of the GT neurons", min=0.0)
    label_gain: float = option(0.5, "label code magnitude g: y in {-g, +g} (paper: 1)", min=0.0, min_exclusive=True)


def _gt_config(kw: dict[str, Any]) -> GTNetworkConfig:
    eta = (kw["eta1"],) if kw["architecture"] == "network1" else (kw["eta1"], kw["eta2"])
    return GTNetworkConfig(architecture=kw["architecture"], iterations=kw["iterations"], eta=eta,
                           layer1_epochs=kw["layer1_epochs"], i_psi=kw["i_psi"],
                           label_gain=kw.get("label_gain", GTNetworkConfig.label_gain))   # absent: older checkpoints


GT_KIND = ModelKind(
    "gt_network", "differential growth-transform network: predicts the label whose run spikes least",
    GTOptions, "gt", "tabular",
    lambda options, train_set: {"n_features": int(train_set.input_shape[0]), "n_classes": int(train_set.n_classes),
                                **asdict(options)},
    lambda kw: GTNetwork(kw["n_features"], kw["n_classes"], _gt_config(kw), seed=kw.get("seed", 0)),
    lambda kw, penalty: FewestSpikesObjective())

@dataclass(frozen=True)
class MLPOptions:
    width: int = option(128, "units per hidden layer", min=1)
    depth: int = option(2, "hidden layers (Kunin et al.'s small-scale nets: 2 x 128 shallow, 6 x 64 deep)", min=0)
    activation: str = option("relu", "hidden-unit activation", choices=tuple(MLP_ACTIVATIONS))


def _mlp_construct(kw: dict[str, Any]) -> nn.Module:
    torch.manual_seed(kw.get("seed", 0))
    return MLP(kw["n_features"], kw["n_classes"], kw["width"], kw["depth"], kw["activation"])


MLP_KIND = ModelKind(
    "mlp", "plain ANN multilayer perceptron on feature vectors (cross-entropy on logits)", MLPOptions, "bptt",
    "tabular",
    lambda options, train_set: {"n_features": int(train_set.input_shape[0]), "n_classes": int(train_set.n_classes),
                                **asdict(options)},
    _mlp_construct, lambda kw, penalty: SpikeCountObjective(penalty))

KINDS: dict[str, ModelKind] = {k.name: k for k in (_classifier("conv_snn"), _classifier("mlp_snn"), RSNN_KIND,
                                                   STEREO_KIND, GT_KIND, MLP_KIND)}


@dataclass(frozen=True)
class ThetaOptions:
    hidden: tuple = option((64,), "hidden layer sizes (the paper's MNIST net: [100, 100])")
    tau: float = option(6 / math.pi, "theta neuron time constant (the paper: 6/pi, so Theta = 6)", min=0.0,
                        min_exclusive=True)
    i0: float = option(1.25, "constant drive I0 (> 1/4: the neuron oscillates)", min=0.25, min_exclusive=True)
    trial_time: float = option(2.0, "trial length T (below the period Theta)", min=0.0, min_exclusive=True)
    coding: str = option("binary", "input coding: features >= threshold spike at input_start (binary) or at "
                                   "input_start + (1 - x) input_span (latency)", choices=THETA_CODINGS)
    threshold: float = option(0.5, "binary coding: the feature value that spikes", min=0.0)
    input_start: float = option(0.02, "time of the earliest input spike", min=0.0)
    input_span: float = option(1.0, "latency coding: the time range of the input spikes", min=0.0)
    bias_input: bool = option(False, "one more input neuron that always spikes at input_start")
    w_scale: float = option(0.5, "initial weights uniform in +-w_scale / sqrt(fan-in)", min=0.0)
    phi0_fraction: float = option(0.5, "initial phases phi0 = phi0_fraction Theta (0.5: silent at the start)",
                                  min=0.0, max=1.0)
    pseudospikes: bool = option(True, "silent outputs get pseudospike times from the rate network (false: the free "
                                      "continuation T + Theta - phi(T))")
    input_flip: float = option(0.0, "binary coding: flip each input bit with this probability while training "
                                    "(the paper: 0.02)", min=0.0, max=1.0)
    gamma: float = option(1e-2, "weight of the timing term gamma (exp(t_label / T) - 1) of the loss", min=0.0)


def _theta_resolve(options: ThetaOptions, train_set) -> dict[str, Any]:
    hidden = options.hidden
    if not hidden or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
        raise ValueError(f"model.hidden must list layer sizes >= 1, got {list(hidden)!r}")
    return {"n_in": int(math.prod(train_set.input_shape)), "n_classes": int(train_set.n_classes), **asdict(options)}


def _theta_construct(kw: dict[str, Any]) -> nn.Module:
    kw = {k: v for k, v in kw.items() if k != "gamma"}
    return ThetaNetwork(**{**kw, "hidden": tuple(kw["hidden"])})


THETA_KIND = ModelKind(
    "theta_snn", "feed-forward theta (QIF) network, time-to-first-spike coding, exact spike-time gradients",
    ThetaOptions, "bptt", "tabular", _theta_resolve, _theta_construct,
    lambda kw, penalty: TTFSObjective(kw["gamma"], kw["trial_time"]),
    graph_input_shape=lambda shape: (int(math.prod(shape)),),
    prepare_input=lambda x: x.unsqueeze(0))        # a one-step time axis: the activity probe counts samples
KINDS[THETA_KIND.name] = THETA_KIND


# local-rule models (issue 18): E/I networks for BTSP, oscillators for reward-modulated fluctuations
def _ei_kind(name: str, neuron: str) -> ModelKind:
    def resolve(options: EIOptions, train_set) -> dict[str, Any]:
        hidden = options.hidden
        if not hidden or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
            raise ValueError(f"model.hidden must list layer sizes >= 1, got {list(hidden)!r}")
        return {"n_in": int(math.prod(train_set.input_shape)), "n_out": int(train_set.n_classes), **asdict(options),
                "neuron": neuron}

    def construct(kw: dict[str, Any]) -> nn.Module:
        return EINetwork(**{**{k: v for k, v in kw.items() if k != "loss"}, "hidden": tuple(kw["hidden"])})

    what = "rate units" if neuron == "rate" else "LIF populations, rates from spike counts"
    return ModelKind(name, f"E/I network with somatic and dendritic inhibition, Dale's law ({what})", EIOptions,
                     "btsp", "tabular", resolve, construct, lambda kw, penalty: RateTargetObjective(kw.get("loss", "mse")))


def _oscillator_kind(name: str, cls, options: type, description: str) -> ModelKind:
    return ModelKind(name, description, options, "fluctuation", "sequence",
                     lambda o, train_set: {**asdict(o)},
                     lambda kw: cls(**{k: v for k, v in kw.items() if k != "transient"}),
                     lambda kw, penalty: OscillationObjective(kw["dt"], kw["transient"]),
                     prepare_input=lambda x: x.transpose(0, 1).contiguous())


for _kind in (_ei_kind("ei_network", "rate"), _ei_kind("ei_lif", "lif"),
              _oscillator_kind("ctrnn", CTRNN, CTRNNOptions, "continuous-time recurrent network (Beer's CTRNN) that "
                               "should oscillate: fitness = mean |d output| per time"),
              _oscillator_kind("lif_population", LIFPopulation, LIFPopulationOptions, "recurrent LIF population with "
                               "filtered-spike outputs on the oscillation task")):
    KINDS[_kind.name] = _kind


@dataclass(frozen=True)
class RateRNNOptions:
    n_rec: int = option(64, "recurrent tanh units", min=1)
    alpha: float = option(0.2, "leak dt / tau of h[t] = (1 - alpha) h[t-1] + alpha tanh(...)", min=0.0,
                          min_exclusive=True, max=1.0)
    g: float = option(0.9, "initial recurrent gain: W_rec ~ N(0, g^2 / n_rec)", min=0.0)
    loss: str = option("ce", "ce: sequence cross-entropy on the loss mask (as rsnn); mse: signed targets, label y "
                             "asks output y // 2 for +1 (y odd) or -1 (the memory tasks); mse_silent: and the other "
                             "outputs 0", choices=("ce", "mse", "mse_silent"))
    learn: str = option("all", "which weights learn: all, or recurrent (W_rec and b; input and readout stay the random "
                               "ones drawn)", choices=RATE_RNN_LEARN)
    readout: str = option("random", "W_out: random N(0, 1/n_rec), or input (output k reads along input k's vector, "
                                    "W_in[:, k] / |W_in[:, k]|^2; needs as many outputs as inputs)",
                          choices=RATE_RNN_READOUTS)


def _rate_rnn_resolve(options: RateRNNOptions, train_set) -> dict[str, Any]:
    k = int(train_set.n_classes)
    if options.loss != "ce" and k % 2:
        raise ValueError(f"model.loss = {options.loss!r} reads labels as (output, sign) pairs and needs an even class "
                         f"count, got {k}")
    return {"n_in": int(math.prod(train_set.input_shape)), "n_out": k // 2 if options.loss != "ce" else k,
            **asdict(options)}


RATE_RNN_KIND = ModelKind(
    "rate_rnn", "leaky tanh RNN (rate network) with a linear readout; inputs flattened per step", RateRNNOptions,
    "bptt", "frames", _rate_rnn_resolve,
    lambda kw: RateRNN(kw["n_in"], kw["n_rec"], kw["n_out"], kw["alpha"], kw["g"], seed=kw.get("seed", 0),
                       learn=kw.get("learn", "all"), readout=kw.get("readout", "random")),
    lambda kw, penalty: (SignedTargetObjective(silent=kw["loss"] == "mse_silent") if kw["loss"] != "ce"
                         else SequenceObjective(kw["n_out"], 0.0, 0.0, 1.0)),
    graph_input_shape=lambda shape: (int(math.prod(shape)),),
    prepare_input=lambda x: x.flatten(2))
KINDS[RATE_RNN_KIND.name] = RATE_RNN_KIND


# spike-and-slab ensembles (issue 19): BPTT through the mean-field forward
@dataclass(frozen=True)
class SpikeSlabOptions:
    """The ``[model]`` table of kind ``spike_slab_rnn``."""

    hidden: int = option(64, "recurrent units", min=1)
    neuron: str = option("rate", "recurrent units: relu rate units (the paper's) or LIF neurons", choices=SPIKE_SLAB_NEURONS)
    tau_m: float = option(1.0, "membrane time constant in steps (rate: h += (u - h) / tau_m; lif: decay exp(-1/tau_m))",
                          min=1.0)
    tau_out: float = option(1.0, "readout integrator time constant in steps (1: no leak)", min=1.0)
    repeat: int = option(1, "model steps per input step (a finer scan for spiking units)", min=1)
    input_gain: float = option(1.0, "input slab means N(0, input_gain^2 / n_in)", min=0.0)
    rec_gain: float = option(1.0, "recurrent slab means: rec_gain * I (rate) or N(0, rec_gain^2 / hidden) (lif)",
                             min=0.0)
    pi_init: float = option(0.02, "initial probability of a zero weight", min=0.0, min_exclusive=True, max=0.5)
    xi_max: float = option(0.1, "initial slab variances U(0, xi_max)", min=0.0)
    v_th: float = option(1.0, "lif: threshold", min=0.0, min_exclusive=True)
    sparsity: float = option(0.0, "loss weight of mean(1 - pi): pulls connections towards pruned", min=0.0)


SPIKE_SLAB_KIND = ModelKind(
    "spike_slab_rnn", "spike-and-slab RNN ensemble (weights 0 w.p. pi else N(m, xi)), mean-field forward; rate or LIF "
    "units", SpikeSlabOptions, "bptt", "sequence",
    lambda options, train_set: {"n_in": int(train_set.input_shape[-1]), "n_out": int(train_set.n_classes),
                                **asdict(options)},
    lambda kw: SpikeSlabRNN(**{k: v for k, v in kw.items() if k != "sparsity"}),
    lambda kw, penalty: ReadoutObjective(kw["repeat"], kw["sparsity"]),
    graph_input_shape=lambda shape: (int(shape[-1]),),
    prepare_input=lambda x: x.transpose(0, 1).contiguous())
KINDS[SPIKE_SLAB_KIND.name] = SPIKE_SLAB_KIND


# ------------------------------------------------------------------------------------- bring your own model
def _factory(ref: str) -> Callable[..., nn.Module]:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"model {ref!r}: a user model is named 'package.module:factory'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"model {ref!r}: cannot import {attr!r} from {module_name!r} ({exc})") from exc


def user_kind(ref: str) -> ModelKind:
    """The kind of a user's model ``package.module:factory``: ``factory(input_shape=(C, H, W), n_classes=K,
    **options)`` (it may leave out either argument) returning an ``nn.Module`` that maps a time-first batch
    ``(T, B, C, H, W)`` to per-class scores ``(B, K)`` (e.g. output spike counts). Its ``[model]`` table is
    passed through to the factory; it trains with any rule on spike counts, and exports through
    ``spikes.graph.capture`` (its own ``to_graph``, or its modules read as a sequence)."""
    factory = _factory(ref)
    params = inspect.signature(factory).parameters

    open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())

    def resolve(options: dict[str, Any], train_set) -> dict[str, Any]:
        kw = dict(options)
        unknown = [k for k in kw if k not in params or k in ("input_shape", "n_classes")]
        if unknown and not open_kwargs:
            names = [n for n in params if n not in ("input_shape", "n_classes")]
            raise ValueError(f"model.{unknown[0]}: {ref} takes no such argument (its [model] keys: "
                             f"{', '.join(names) or 'none'})")
        if "input_shape" in params:
            kw["input_shape"] = list(train_set.input_shape)
        if "n_classes" in params:
            kw["n_classes"] = int(train_set.n_classes)
        return kw

    def construct(kw: dict[str, Any]) -> nn.Module:
        kw = dict(kw)
        torch.manual_seed(kw.pop("seed", 0))
        if "input_shape" in kw:
            kw["input_shape"] = tuple(kw["input_shape"])
        try:
            model = factory(**kw)
        except TypeError as exc:
            raise ValueError(f"model {ref!r}: {exc} (the [model] table's keys are passed to it)") from exc
        if not isinstance(model, nn.Module):
            raise ValueError(f"model {ref!r} returned {type(model).__name__}, not a torch nn.Module")
        return model

    return ModelKind(ref, f"user model {ref}", dict, "bptt", "frames", resolve, construct,
                     lambda kw, penalty: SpikeCountObjective(penalty))


def kind_of(name: str) -> ModelKind:
    """The built-in kind ``name``, or a user's ``package.module:factory``."""
    if name in KINDS:
        return KINDS[name]
    if ":" in name:
        return user_kind(name)
    raise ValueError(f"unknown model {name!r}: choose one of {sorted(KINDS)} or name your own 'package.module:factory'")


def options_fields(kind: ModelKind) -> dict[str, Any]:
    """``{name: dataclasses.Field}`` of a kind's options (empty for user models: their table is passed through)."""
    return {f.name: f for f in fields(kind.options)} if kind.options is not dict else {}
