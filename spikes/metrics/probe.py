"""Activity probes: forward hooks that measure firing rates, activation density and synaptic operations.

Attach to any model without changing it; the hooks are removed on exit::

    with SpikeProbe(model) as probe:
        model(x)
    rows = probe.table()          # list of dicts, one per probed layer (see :meth:`SpikeProbe.table`)

Definitions (totals accumulate over every forward call inside the ``with`` block):

- ``firing_rate`` (spiking layers: :class:`spikes.neurons.SpikingNeuron`, :class:`spikes.layers.RecurrentLIF`):
  ``spikes / (neurons * steps * samples)``, i.e. the mean of the layer's spike output ``(T, B, ...)``: spikes
  per neuron per time step.
- ``density`` (every probed layer): ``nonzero(output) / numel(output)``. StereoSpike reports activity this way.
- ``synops`` (synaptic layers: Linear, Conv1d/2d/3d, ConvTranspose, anything with a ``weight``):
  ``sum_j [x_j != 0] * fan_out_j`` over all input elements ``x_j``: every nonzero input is one event that
  reaches ``fan_out_j`` synapses. ``fan_out_j`` is exact, border effects included: it is the gradient of
  ``sum(layer_with_unit_weights(x))`` with respect to ``x_j`` (Linear: ``out_features``; Conv2d with
  padding: ``C_out/groups * (number of kernel taps of x_j that land on an output position)``, ``C_out k^2``
  in the interior). For spike inputs (0/1) this is spikes x fan-out; ``input_binary`` says whether every
  input was 0/1 (after average pooling inputs are not spikes, and each nonzero still counts as one event).
- recurrent populations (:class:`~spikes.layers.RecurrentLIF`) also count their recurrent synops:
  ``s[t]`` reaches the population at ``t + 1``, so ``synops = sum(s[:-1]) * (hidden - zero_diagonal)``; their
  input projection is a child layer with its own row.
- ``samples``: the batch size of the model's input (dimension ``batch_dim``, 1 for time-first ``(T, B, ...)``)
  summed over calls; ``synops_per_sample = synops / samples``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Iterable, Sequence

import torch
from torch import nn
from torch.func import functional_call

from spikes.metrics.table import to_csv, to_markdown
from spikes.layers.recurrent import RecurrentLIF
from spikes.neurons import SpikingNeuron

SPIKING = (SpikingNeuron, RecurrentLIF)


def is_spiking(module: nn.Module) -> bool:
    """A spiking layer: one of :data:`SPIKING`, or any module with a ``spike_output(output)`` method that returns
    its spikes time first ``(T, B, ...)`` (how layers of other shapes declare themselves: a one-step neuron,
    a recurrent layer that returns its readout beside its spikes)."""
    return isinstance(module, SPIKING) or callable(getattr(module, "spike_output", None))

# Leaves that only reshape or pass data on: not worth a row by default.
_SKIPPED = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)


@dataclass
class LayerStats:
    """Running totals of one probed layer."""

    name: str
    kind: str
    role: str                      # "neuron", "synapse" or "other"
    calls: int = 0
    out_nonzero: int = 0
    out_numel: int = 0
    spikes: float = 0.0            # neuron layers: sum of the spike output
    neurons: int = 0               # neuron layers: neurons per sample (output shape after (T, B))
    steps: int = 0                 # neuron layers: T of the last call
    in_nonzero: int = 0            # synapse layers: nonzero inputs (events)
    in_numel: int = 0
    synops: float = 0.0
    input_binary: bool = True
    _fan_out: dict = field(default_factory=dict, repr=False)


def is_synaptic(module: nn.Module) -> bool:
    """A layer with a ``weight`` parameter that maps inputs through synapses (Linear, ConvNd, ConvTransposeNd)."""
    return isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)) or (
        isinstance(getattr(module, "weight", None), nn.Parameter) and not is_spiking(module)
        and not isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)))


def _display_name(name: str, module: nn.Module, root: nn.Module) -> str:
    """``features.0`` for the module wrapped by ``TimeDistributed`` at ``features.0`` (not ``features.0.module``)."""
    if not name:
        return type(module).__name__
    parent, _, last = name.rpartition(".")
    if last == "module" and type(root.get_submodule(parent) if parent else root).__name__ == "TimeDistributed":
        return parent or type(module).__name__
    return name


class SpikeProbe:
    """Record per-layer activity of ``model`` while inside ``with``; read it with :meth:`table`.

    ``layers``: names (as in ``model.named_modules()``) or module types to probe; default: every
    spiking layer (:data:`SPIKING`) and every leaf module except Flatten/Identity/Dropout. ``batch_dim``: the
    batch dimension of the model's first input (1 for time-first sequences).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str | type] | None = None, batch_dim: int = 1):
        self.model = model
        self.batch_dim = batch_dim
        self.samples = 0
        self.stats: dict[str, LayerStats] = {}
        self._handles: list = []
        self._busy = False
        self._selected = list(self._select(layers))
        if not self._selected:
            raise ValueError(f"SpikeProbe: no layer of {type(model).__name__} matches layers={layers!r}")

    def _select(self, layers) -> Iterable[tuple[str, nn.Module]]:
        names = {name for name, _ in self.model.named_modules()}
        if layers is not None:
            missing = [l for l in layers if isinstance(l, str) and l not in names]
            if missing:
                raise ValueError(f"SpikeProbe: {type(self.model).__name__} has no layer named {missing}")
        for name, m in self.model.named_modules():
            if layers is None:
                leaf = next(m.children(), None) is None
                if is_spiking(m) or (leaf and not isinstance(m, _SKIPPED)):
                    yield _display_name(name, m, self.model), m
            elif any((isinstance(l, str) and l == name) or (isinstance(l, type) and isinstance(m, l)) for l in layers):
                yield _display_name(name, m, self.model), m

    # -- context manager -------------------------------------------------------------------------------
    def __enter__(self) -> "SpikeProbe":
        self.attach()
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

    def attach(self) -> None:
        """Register the hooks (``__enter__`` does this)."""
        if self._handles:
            return
        self._handles.append(self.model.register_forward_pre_hook(self._count_samples))
        for name, m in self._selected:
            role = "neuron" if is_spiking(m) else "synapse" if is_synaptic(m) else "other"
            st = self.stats.setdefault(name, LayerStats(name, type(m).__name__, role))
            self._handles.append(m.register_forward_hook(self._make_hook(st)))

    def detach(self) -> None:
        """Remove every hook: the model is as before."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def reset(self) -> None:
        """Zero all totals (hooks stay attached; fan-out maps stay cached)."""
        self.samples = 0
        for st in self.stats.values():
            fresh = LayerStats(st.name, st.kind, st.role)
            for f in fields(LayerStats):
                if f.name != "_fan_out":
                    setattr(st, f.name, getattr(fresh, f.name))

    # -- hooks -----------------------------------------------------------------------------------------
    def _count_samples(self, module, inputs) -> None:
        if self._busy:
            return
        x = inputs[0] if inputs else None
        if isinstance(x, torch.Tensor) and x.dim() > self.batch_dim:
            self.samples += int(x.shape[self.batch_dim])

    def _make_hook(self, st: LayerStats):
        def hook(module: nn.Module, inputs, output) -> None:
            if st.role == "neuron" and not isinstance(module, SPIKING) and not self._busy:
                output = module.spike_output(output)
            if self._busy or not isinstance(output, torch.Tensor):
                return
            with torch.no_grad():
                out = output.detach()
                st.calls += 1
                st.out_nonzero += int(torch.count_nonzero(out))
                st.out_numel += out.numel()
                if st.role == "neuron":
                    st.spikes += float(out.sum())
                    st.steps = int(out.shape[0]) if out.dim() >= 2 else 1
                    st.neurons = int(out[0, 0].numel()) if out.dim() >= 2 else int(out.numel())
                    if isinstance(module, RecurrentLIF):
                        fan = st.neurons - (1 if module.zero_diagonal else 0)
                        st.synops += float(out[:-1].sum()) * fan
                elif st.role == "synapse" and inputs and isinstance(inputs[0], torch.Tensor):
                    x = inputs[0].detach()
                    events = x != 0
                    st.in_nonzero += int(events.sum())
                    st.in_numel += x.numel()
                    st.input_binary = st.input_binary and bool(((x == 0) | (x == 1)).all())
                    fan = self._fan_out_map(module, st, x)
                    st.synops += float((events.to(fan.dtype) * fan).sum())
        return hook

    def _fan_out_map(self, module: nn.Module, st: LayerStats, x: torch.Tensor) -> torch.Tensor:
        """Synapses reached by each input element (shape ``x.shape[1:]``): grad of sum(unit-weight layer)."""
        key = tuple(x.shape[1:])
        if key not in st._fan_out:
            params = {n: (torch.ones_like(p) if n.endswith("weight") else torch.zeros_like(p))
                      for n, p in module.named_parameters()}
            probe_in = torch.ones((1, *key), dtype=torch.float64 if x.is_floating_point() else torch.float32,
                                  device=x.device, requires_grad=True)
            params = {n: p.to(probe_in.dtype) for n, p in params.items()}
            self._busy = True
            try:
                with torch.enable_grad():
                    functional_call(module, params, (probe_in,)).sum().backward()
            except Exception as exc:
                raise RuntimeError(f"SpikeProbe: cannot compute the fan-out of layer {st.name!r} ({st.kind}) "
                                   f"for input shape {key}: {exc}") from exc
            finally:
                self._busy = False
            st._fan_out[key] = probe_in.grad[0].to(torch.float32 if x.dtype != torch.float64 else x.dtype)
        return st._fan_out[key]

    # -- results ---------------------------------------------------------------------------------------
    def table(self) -> list[dict]:
        """One dict per probed layer, in model order.

        Keys: ``layer, kind, role, calls, samples, neurons, steps, spikes, firing_rate, density,
        input_events, input_density, input_binary, synops, synops_per_sample`` (None where not applicable).
        """
        rows = []
        for st in self.stats.values():
            neuron, syn = st.role == "neuron", st.role == "synapse"
            rows.append({
                "layer": st.name, "kind": st.kind, "role": st.role, "calls": st.calls, "samples": self.samples,
                "neurons": st.neurons if neuron else None,
                "steps": st.steps if neuron else None,
                "spikes": st.spikes if neuron else None,
                "firing_rate": (st.spikes / st.out_numel) if neuron and st.out_numel else None,
                "density": (st.out_nonzero / st.out_numel) if st.out_numel else None,
                "input_events": st.in_nonzero if syn else None,
                "input_density": (st.in_nonzero / st.in_numel) if syn and st.in_numel else None,
                "input_binary": st.input_binary if syn else None,
                "synops": st.synops if syn or st.synops else None,
                "synops_per_sample": (st.synops / self.samples) if (syn or st.synops) and self.samples else None,
            })
        return rows

    def summary_rows(self) -> list[dict]:
        """The spiking and synaptic layers' rows in the run-summary format that ``spikes compare`` reads
        (``layer, firing_rate, density, synops`` per sample, ``neurons, steps``)."""
        return [{"layer": r["layer"], "firing_rate": r["firing_rate"], "density": r["density"],
                 "synops": r["synops_per_sample"], "neurons": r["neurons"], "steps": r["steps"]}
                for r in self.table() if r["role"] in ("neuron", "synapse")]

    def firing_rates(self) -> dict[str, float]:
        """Layer name -> firing rate, for the spiking layers."""
        return {r["layer"]: r["firing_rate"] for r in self.table() if r["role"] == "neuron" and r["firing_rate"] is not None}

    def mean_firing_rate(self) -> float:
        """Spikes per neuron per step over all spiking layers together (total spikes / total neuron-steps)."""
        sts = [s for s in self.stats.values() if s.role == "neuron"]
        total = sum(s.out_numel for s in sts)
        return sum(s.spikes for s in sts) / total if total else 0.0

    def total_synops(self) -> float:
        return sum(s.synops for s in self.stats.values())

    def to_csv(self, path=None) -> str:
        return to_csv(self.table(), path)

    def to_markdown(self, columns: Sequence[str] | None = None, float_format: str = ".4g") -> str:
        rows = self.table()
        if columns is not None:
            rows = [{c: r[c] for c in columns} for r in rows]
        return to_markdown(rows, float_format)
