"""The observables logger: what an experimentalist could record of a network while it learns (Nayebi et al. 2020).

:class:`ObservablesLogger` is a training callback. At ``checkpoints`` moments spread evenly over the run (21 by
default: before the first step, then at steps ``round(k K / (N - 1))``, k = 1 .. N-1, of the run's K steps) it
measures, for every synaptic layer l of the model, on a fixed probe batch of training samples:

- ``weight``: the layer's weights ``W_l`` (units = output units, the rows of ``W_l``; conv: output channels);
- ``act``: the layer's activity per sample and unit: for an ANN the block output ``y_l`` (the input of the next
  synaptic layer, i.e. after the nonlinearity; the last layer: the model output); for a spiking network the spike
  count ``sum_t s_t`` of the population the layer drives (the last layer: the model output when no population
  follows it);
- ``membrane`` (spiking layers only): the membrane potentials ``v_t`` of that population at every step;
- the layer-wise activity change ``gradavg``: with ``g_bi = sum_j dy_bj / dx_bi`` (autograd's vector-Jacobian
  product with ones; spiking layers: the surrogate derivative, summed over time), ``gradavg_f = mean_b sum_i
  f(g_bi) / n_out`` for ``f`` in raw, sq, abs (``n_out``: output units observed per sample).

Of every measured tensor it keeps :func:`statistics`: for ``f`` in (raw, sq = v^2, abs = |v|) the norm (L2),
mean, median, third quartile, variance (population), skewness and excess kurtosis (scipy's biased defaults) of
``f(v)`` over all its entries: 21 numbers per measure, plus the 3 ``gradavg`` values: :data:`OBSERVABLES`.

Degradations (what a recording loses) are applied at logging time, every setting side by side
(:func:`settings`): ``unit_fraction`` f keeps a random ``ceil(f n)`` of each layer's n units (the same units at
every checkpoint, drawn from ``seed`` and the layer; weights keep those units' rows, activations and membranes
their columns, ``gradavg`` averages over those output units); ``noise`` s adds Gaussian measurement noise
``s * sigma_0 * N(0, 1)`` to every value before the statistics, ``sigma_0`` the standard deviation of that measure
at the first checkpoint (fresh noise at each checkpoint, from ``seed`` and the step). The noise and the subsets
have their own generators, and the probe runs in eval mode without gradients reaching the parameters, so logging
does not change the training (same weights with or without it).

Models: any ``nn.Module`` with synaptic layers (``mlp``, ``mlp_snn``, ``conv_snn``, user models: forward hooks),
e-prop's ``rsnn`` (layers ``w_in``, ``w_rec``, ``w_out``; ``gradavg`` of ``w_in`` only, no membranes) and the
growth-transform ``gt_network`` (couplings ``Q0`` per layer; spike counts and membranes from a learning-free run
with the true label code; no ``gradavg``). What a model does not have is NaN.

The file (``path``, written atomically at the end of a run that measured every checkpoint): ``.npz`` with
``obs`` float32 ``(settings, layers, observables, checkpoints)``, ``steps`` ``(checkpoints,)``, ``settings``
``(S, 2)`` rows (unit_fraction, noise), and ``meta`` a JSON string: observables, layers (name, position 0/1/2 =
early/middle/deep, spiking).
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from spikes.io import atomic_write_bytes
from spikes.metrics.probe import is_spiking, is_synaptic
from spikes.neurons import SpikingNeuron
from spikes.options import check_value, option
from spikes.training.callbacks import Callback
from spikes.training.loop import make_batch

FUNCTIONS = ("raw", "sq", "abs")
STATISTICS = ("norm", "mean", "median", "q3", "var", "skew", "kurtosis")
MEASURES = ("weight", "act", "membrane")
GRADAVG = tuple(f"gradavg_{f}" for f in FUNCTIONS)
OBSERVABLES: tuple[str, ...] = tuple(f"{m}_{f}_{s}" for m in MEASURES for f in FUNCTIONS for s in STATISTICS) + GRADAVG
FAMILIES = {"weights": ("weight_",), "activations": ("act_", "membrane_"), "activity_change": ("gradavg_",),
            "all": ("weight_", "act_", "membrane_", "gradavg_")}


def statistics(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(21,)`` float64: for f in (raw, sq, abs), of ``f(values)`` flattened: L2 norm, mean, median, third
    quartile (linear interpolation, numpy's default), population variance, skewness ``m3 / m2^1.5`` and excess
    kurtosis ``m4 / m2^2 - 3`` (``m_k`` central moments; scipy.stats' biased defaults; NaN when the values are
    constant, ``m2`` within rounding of 0)."""
    v = (values.detach().double().cpu().numpy() if isinstance(values, torch.Tensor)
         else np.asarray(values, dtype=np.float64)).ravel()
    if v.size == 0:
        return np.full(len(FUNCTIONS) * len(STATISTICS), np.nan)
    out = []
    for g in (v, v * v, np.abs(v)):
        mean = g.mean()
        d = g - mean
        d2 = d * d
        m2, m3, m4 = d2.mean(), (d2 * d).mean(), (d2 * d2).mean()
        median, q3 = np.quantile(g, [0.5, 0.75])
        skew, kurt = (m3 / m2 ** 1.5, m4 / m2 ** 2 - 3.0) if m2 > (1e-12 * np.abs(g).max()) ** 2 else (np.nan, np.nan)
        out += [np.sqrt((g * g).sum()), mean, median, q3, m2, skew, kurt]
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class ObservablesOptions:
    checkpoints: int = option(21, "measurements spread evenly over training (the first before any step)", min=2)
    probe_size: int = option(64, "training samples in the fixed probe batch", min=1)
    unit_fractions: tuple = option((1.0, 0.5, 0.25, 0.1), "fractions of units observed (each a setting)")
    noises: tuple = option((0.0, 0.1, 0.3, 1.0), "measurement noise levels, times the measure's initial std")
    seed: int = option(0, "seed of the probe batch, the unit subsets and the noise", min=0)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check_value(f"observables.{f.name}", getattr(self, f.name), f,
                                                         "ObservablesOptions"))
        for name, values, low in (("unit_fractions", self.unit_fractions, 0.0), ("noises", self.noises, -1.0)):
            if not values or any(not isinstance(v, (int, float)) or isinstance(v, bool) or not v > low
                                 for v in values) or (name == "unit_fractions" and max(values) > 1):
                raise ValueError(f"observables.{name} must list numbers in {'(0, 1]' if low == 0 else '[0, inf)'}, "
                                 f"got {list(values)!r}")


def settings(options: ObservablesOptions) -> list[tuple[float, float]]:
    """``(unit_fraction, noise)`` of each setting: the clean recording first, then each fraction < 1 without noise,
    then each noise > 0 with all units."""
    out = [(1.0, 0.0)]
    out += [(float(f), 0.0) for f in options.unit_fractions if f < 1]
    out += [(1.0, float(s)) for s in options.noises if s > 0]
    return out


def layer_position(index: int, n_layers: int) -> int:
    """0 early, 1 middle, 2 deep: ``round(2 l / (L - 1))`` (a single layer is early)."""
    return 0 if n_layers < 2 else int(round(2 * index / (n_layers - 1)))


@dataclass
class LayerRecord:
    """One synaptic layer's measurements on the probe batch. Unit axes: ``weight`` 0, ``act`` 1, ``membrane`` 2
    (time first); ``grad(mask)`` -> per-sample ``g`` ``(B, inputs)`` for an output-unit mask of length ``units`` and
    the number of output units it covers per sample."""

    name: str
    spiking: bool
    weight: torch.Tensor
    act: torch.Tensor | None
    membrane: torch.Tensor | None = None
    grad: Callable[[torch.Tensor], torch.Tensor] | None = None
    units: int = 0
    values: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- the model adapters
def _module_records(model: nn.Module, x: torch.Tensor, time_first: bool) -> list[LayerRecord]:
    """Synaptic layers of an ``nn.Module`` (module order), by hooks: each layer's input is made a leaf of the
    autograd graph, the tensor that reached it is the previous block's output."""
    synapses = [(n, m) for n, m in model.named_modules() if is_synaptic(m) and not list(m.children())]
    spiking = [m for _, m in model.named_modules() if is_spiking(m)]
    if not synapses:
        raise ValueError(f"{type(model).__name__} has no synaptic layer (Linear/Conv) to observe")
    leaves: list[torch.Tensor | None] = [None] * len(synapses)
    arrived: list[torch.Tensor | None] = [None] * len(synapses)
    currents: dict[int, torch.Tensor] = {}
    outputs: dict[int, torch.Tensor] = {}
    hooks = []

    def pre_hook(k):
        def hook(module, args):
            arrived[k] = args[0]
            leaves[k] = args[0].detach().requires_grad_(True)
            return (leaves[k], *args[1:])
        return hook

    def neuron_hooks(k):
        def pre(module, args):
            currents[k] = args[0].detach()

        def post(module, args, out):
            outputs[k] = (out if isinstance(module, SpikingNeuron) else module.spike_output(out)).detach()
        return pre, post

    try:
        for k, (_, m) in enumerate(synapses):
            hooks.append(m.register_forward_pre_hook(pre_hook(k)))
        for k, m in enumerate(spiking):
            pre, post = neuron_hooks(k)
            hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
        with torch.enable_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    out = out[0] if isinstance(out, (tuple, list)) else out
    steps = x.shape[0] if time_first else 1
    batch = x.shape[1] if time_first else x.shape[0]
    records = []
    for k, (name, m) in enumerate(synapses):
        y = arrived[k + 1] if k + 1 < len(synapses) else out
        x_k = leaves[k]
        if spiking and k < len(spiking):
            s = outputs[k]
            act = s.reshape(steps, batch, *s.shape[2:]).sum(0) if time_first else s
            membrane = None
            if isinstance(spiking[k], SpikingNeuron) and k in currents:
                state, vs = None, []
                with torch.no_grad():
                    for t in range(currents[k].shape[0]):
                        _, state = spiking[k].step(currents[k][t], state)
                        vs.append(state.v)
                membrane = torch.stack(vs)
        else:
            act = y.detach()
            if act.shape[0] == steps * batch and time_first and act.shape[0] != batch:
                act = act.reshape(steps, batch, *act.shape[1:]).mean(0)
            membrane = None

        def grad(mask, y=y, x_k=x_k):
            if y is None or x_k is None or not y.requires_grad:
                return None
            per_row = int(np.prod(y.shape[1:]))
            if per_row % len(mask):          # outputs that are not grouped by this layer's units: observe all
                mask = torch.ones(len(mask))
            w = mask.to(y.dtype).repeat_interleave(per_row // len(mask)).reshape(1, *y.shape[1:]).expand_as(y)
            (g,) = torch.autograd.grad(y, x_k, grad_outputs=w, retain_graph=True, allow_unused=True)
            if g is None:
                return None
            g = g.detach()
            rows = g.shape[0]
            g = g.reshape(rows // batch, batch, -1).sum(0) if rows != batch else g.reshape(batch, -1)
            return g, float(w[0].sum())
        units = int(m.weight.shape[0])
        records.append(LayerRecord(name, bool(spiking), m.weight.detach().clone(), act, membrane, grad, units))
    return records


def _rsnn_records(model, x: torch.Tensor) -> list[LayerRecord]:
    x = x.detach().to(model.w_in.dtype).requires_grad_(True)
    with torch.enable_grad():
        y, z = model(x)

    def grad_in(mask):
        if not z.requires_grad:
            return None
        (g,) = torch.autograd.grad(z, x, grad_outputs=mask.to(z.dtype).expand_as(z), retain_graph=True,
                                   allow_unused=True)
        return None if g is None else (g.detach().sum(0), float(mask.sum()))

    counts = z.detach().sum(0)
    n, k = model.w_in.shape[0], model.w_out.shape[0]
    return [LayerRecord("w_in", True, model.w_in.detach().clone(), counts, None, grad_in, n),
            LayerRecord("w_rec", True, model.recurrent_weight().detach().clone(), counts, None, None, n),
            LayerRecord("w_out", False, model.w_out.detach().clone(), y.detach().mean(0), None, None, k)]


def _gt_records(model, x: torch.Tensor, y: torch.Tensor) -> list[LayerRecord]:
    seen: dict[int, list] = {}
    layers = list(model.layers)

    def recorder(layer, s, v, eta):       # learning-free: records the spikes and membranes, changes nothing
        seen.setdefault(next(i for i, l in enumerate(layers) if l is layer), []).append((s.detach(), v.detach()))

    model.learning_rates = lambda: [1.0] * len(layers)     # every layer reports (no update is made)
    try:
        model.run(x, model.label_codes(y), update=recorder)
    finally:
        del model.learning_rates                             # the class's method again
    records = []
    for i, layer in enumerate(layers):
        steps = seen.get(i, [])
        counts = torch.stack([s for s, _ in steps]).sum(0) if steps else None
        membrane = torch.stack([v for _, v in steps]) if steps else None
        records.append(LayerRecord(f"layer{i + 1}", True, layer.q0.detach().clone(), counts, membrane, None,
                                   int(layer.q0.shape[0])))
    return records


def layer_records(model, kind, x: torch.Tensor, y: torch.Tensor) -> list[LayerRecord]:
    """The layers of ``model`` measured on the probe batch ``(x, y)`` (``x`` as the model takes it)."""
    if hasattr(model, "w_in") and hasattr(model, "w_rec") and hasattr(model, "w_out"):
        return _rsnn_records(model, x)
    if hasattr(model, "layers") and hasattr(model, "label_codes") and not isinstance(model, nn.Module):
        return _gt_records(model, x, y)
    if not isinstance(model, nn.Module):
        raise ValueError(f"cannot observe a {type(model).__name__}: not an nn.Module, an RSNN or a GT network")
    return _module_records(model, x, kind.data == "frames")


# ------------------------------------------------------------------------------------------- measurements
def _subset(n: int, fraction: float, seed: int, layer: int) -> torch.Tensor:
    """The first ``ceil(fraction n)`` of a permutation of ``range(n)`` drawn from (seed, layer): the observed units
    (a smaller fraction's units are among a larger one's)."""
    keep = max(1, math.ceil(fraction * n))
    perm = np.random.default_rng([seed, layer, n]).permutation(n)
    return torch.from_numpy(np.sort(perm[:keep]))


def _select(t: torch.Tensor, axis: int, idx: torch.Tensor) -> torch.Tensor:
    """The observed units of ``t`` along ``axis``; all of them where that axis is not the layer's units (a
    flattened or pooled output that has fewer entries than the layer has units)."""
    return t.index_select(axis, idx) if t.shape[axis] > int(idx.max()) else t


def measure(records: list[LayerRecord], setting_list: list[tuple[float, float]], scales: dict, seed: int,
            step: int) -> np.ndarray:
    """``(settings, layers, observables)`` for one checkpoint. ``scales``: ``{(layer, measure): sigma_0}``, filled
    with this checkpoint's standard deviations where missing (the first checkpoint)."""
    out = np.full((len(setting_list), len(records), len(OBSERVABLES)), np.nan)
    rng = np.random.default_rng([seed, step, 1])
    for li, rec in enumerate(records):
        tensors = {"weight": (rec.weight, 0), "act": (rec.act, 1), "membrane": (rec.membrane, 2)}
        grads: dict[float, torch.Tensor | None] = {}
        for si, (fraction, noise) in enumerate(setting_list):
            idx = _subset(rec.units, fraction, seed, li)
            for mi, mname in enumerate(MEASURES):
                t, axis = tensors[mname]
                if t is None or t.dim() <= axis:
                    continue
                v = _select(t.detach().double(), axis, idx).flatten()
                scales.setdefault((li, mname), float(v.std()) if v.numel() > 1 else 0.0)
                if noise:
                    v = v + noise * scales[(li, mname)] * torch.from_numpy(rng.standard_normal(v.numel()))
                base = mi * len(FUNCTIONS) * len(STATISTICS)
                out[si, li, base:base + len(FUNCTIONS) * len(STATISTICS)] = statistics(v)
            if rec.grad is None:
                continue
            if fraction not in grads:
                mask = torch.zeros(rec.units)
                mask[idx] = 1.0
                grads[fraction] = rec.grad(mask)
            if grads[fraction] is None:
                continue
            g, n_out = grads[fraction]
            g = g.double()
            scales.setdefault((li, "gradavg"), float(g.std()) if g.numel() > 1 else 0.0)
            if noise:
                g = g + noise * scales[(li, "gradavg")] * torch.from_numpy(rng.standard_normal(tuple(g.shape)))
            base = len(MEASURES) * len(FUNCTIONS) * len(STATISTICS)
            out[si, li, base:] = [float(f(g).sum(1).mean()) / n_out for f in (lambda a: a, lambda a: a * a, torch.abs)]
    return out


def checkpoint_steps(total_steps: int, n: int) -> list[int]:
    """The steps of the ``n`` measurements over a run of ``total_steps`` steps (0 = before the first step)."""
    return sorted({int(round(k * total_steps / (n - 1))) for k in range(n)})


class ObservablesLogger(Callback):
    """Records the observables (module docstring) at :func:`checkpoint_steps` and writes ``path`` at the end.
    Its records are checkpointed, so a resumed run ends with the file an uninterrupted one writes."""

    def __init__(self, path: str | Path, options: ObservablesOptions = ObservablesOptions()):
        self.path, self.options = Path(path), options
        self.settings = settings(options)
        self.records: dict[int, np.ndarray] = {}
        self.scales: dict = {}
        self.layers: list[dict] = []
        self.steps: list[int] = []
        self.probe = None

    def state_dict(self) -> dict[str, Any]:
        return {"records": {k: torch.from_numpy(v) for k, v in self.records.items()},
                "scales": [[k[0], k[1], v] for k, v in self.scales.items()], "layers": self.layers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.records = {int(k): torch.as_tensor(v).numpy().astype(np.float64) for k, v in state["records"].items()}
            self.scales = {(int(a), b): float(v) for a, b, v in state["scales"]}
            self.layers = list(state["layers"])

    def on_train_start(self, state) -> None:
        self.steps = checkpoint_steps(state.limit, self.options.checkpoints)
        n = len(state.train_set)
        idx = np.sort(np.random.default_rng([self.options.seed, 7]).permutation(n)[:min(self.options.probe_size, n)])
        self.probe = make_batch(state.kind, *state.train_set.batch(torch.from_numpy(idx)))
        if state.step in self.steps and state.step not in self.records:
            self._measure(state)

    def on_step_end(self, state, out) -> None:
        if state.step in self.steps and state.step not in self.records:
            self._measure(state)

    def _measure(self, state) -> None:
        model = state.model
        training = isinstance(model, nn.Module) and model.training
        if isinstance(model, nn.Module):
            model.eval()
        try:
            records = layer_records(model, state.kind, self.probe.x, self.probe.y)
        finally:
            if training:
                model.train()
        if not self.layers:
            self.layers = [{"name": r.name, "position": layer_position(i, len(records)), "spiking": r.spiking}
                           for i, r in enumerate(records)]
        self.records[state.step] = measure(records, self.settings, self.scales, self.options.seed, state.step)

    def complete(self) -> bool:
        return bool(self.steps) and all(s in self.records for s in self.steps)

    def array(self) -> np.ndarray:
        """``(settings, layers, observables, checkpoints)`` float32 of the steps measured so far."""
        return np.stack([self.records[s] for s in sorted(self.records)], -1).astype(np.float32)

    def on_train_end(self, state) -> None:
        if not self.complete() or not state.world.main:
            return
        meta = {"observables": list(OBSERVABLES), "layers": self.layers, "options": asdict(self.options)}
        buf = io.BytesIO()
        np.savez(buf, obs=self.array(), steps=np.asarray(sorted(self.records)), settings=np.asarray(self.settings),
                 meta=np.asarray(json.dumps(meta)))
        atomic_write_bytes(self.path, buf.getvalue())


def load_observables(path: str | Path) -> dict[str, Any]:
    """An :class:`ObservablesLogger` file: ``{obs, steps, settings, meta}`` (``meta`` parsed)."""
    with np.load(path) as f:
        return {"obs": f["obs"], "steps": f["steps"], "settings": f["settings"], "meta": json.loads(str(f["meta"]))}
