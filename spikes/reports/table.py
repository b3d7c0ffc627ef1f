"""The comparison table: one row per (run, backend) with metric, firing rates, synaptic ops and energy.

Row keys: ``run, model, task, backend, metric_name, metric, samples, mean_rate, layer_rates, synops,
energy_uj``:

- ``samples``: test samples a backend ran (empty for torch: the whole test set);

- ``mean_rate``: total spikes / total neuron-steps over the spiking layers when every spiking row gives
  ``neurons`` and ``steps``, else the plain mean of the layer firing rates;
- ``layer_rates``: ``"name=rate ..."`` for each spiking layer;
- ``synops``: synaptic operations per sample (sum over layers; empty if the backend reports none);
- ``energy_uj``: :func:`spikes.energy.energy_from_layers` in microjoules per sample (empty without synops or
  neuron counts);
- one column per measurement of the learning rule (``learning`` in the summary; torch rows only): its mean over
  layers (``angle_wb``: the angle between W and the feedback matrix B, degrees), and ``<measure>_layers``
  ``"name=value ..."`` per layer.
"""
from __future__ import annotations

from typing import Sequence

from spikes.energy import LOIHI1, EnergyParameters, energy_from_layers
from spikes.metrics.table import to_markdown
from spikes.reports.summary import RunSummary

TORCH = "torch"
ROW_KEYS = ("run", "model", "task", "backend", "metric_name", "metric", "samples", "mean_rate", "layer_rates", "synops",
            "energy_uj")     # every row's keys; the learning rule's measurements come beside them


def mean_rate(per_layer: Sequence[dict]) -> float | None:
    """Spikes per neuron per step over all spiking layers (neuron-weighted when sizes are known)."""
    rows = [r for r in per_layer if r.get("firing_rate") is not None]
    if not rows:
        return None
    if all(r.get("neurons") and r.get("steps") for r in rows):
        w = [r["neurons"] * r["steps"] for r in rows]
        return sum(r["firing_rate"] * x for r, x in zip(rows, w)) / sum(w)
    return sum(r["firing_rate"] for r in rows) / len(rows)


def _layer_rates(per_layer: Sequence[dict]) -> str:
    return " ".join(f"{r['layer']}={r['firing_rate']:.3g}" for r in per_layer if r.get("firing_rate") is not None)


def _synops(per_layer: Sequence[dict]) -> float | None:
    vals = [r["synops"] for r in per_layer if r.get("synops") is not None]
    return sum(vals) if vals else None


def _energy_uj(per_layer: Sequence[dict], params: EnergyParameters) -> float | None:
    e = energy_from_layers(per_layer, params)
    has_neurons = any(r.get("firing_rate") is not None and r.get("neurons") and r.get("steps") for r in per_layer)
    if _synops(per_layer) is None or not has_neurons:
        return None
    return e.total * 1e6


def activity_views(s: RunSummary) -> list[tuple[str, float | None, list[dict]]]:
    """``(backend, metric, per_layer)`` for torch first, then each deployed backend."""
    return [(TORCH, s.metric, s.per_layer)] + [(k, b.metric, b.per_layer) for k, b in s.backends.items()]


def _samples(s: RunSummary, backend: str) -> int | None:
    return s.backends[backend].samples if backend in s.backends else None


def _learning(s: RunSummary) -> dict:
    row = {}
    for measure, per_layer in s.learning.items():
        row[measure] = sum(per_layer.values()) / len(per_layer) if per_layer else None
        row[f"{measure}_layers"] = " ".join(f"{layer}={v:.3g}" for layer, v in per_layer.items())
    return row


def comparison_rows(summaries: Sequence[RunSummary], params: EnergyParameters = LOIHI1) -> list[dict]:
    """The table rows (keys in the module docstring), runs in the given order, torch before backends."""
    rows = []
    for s in summaries:
        for backend, metric, layers in activity_views(s):
            rows.append({"run": s.label, "model": s.model, "task": s.task, "backend": backend,
                         "metric_name": s.metric_name, "metric": metric,
                         "samples": _samples(s, backend), "mean_rate": mean_rate(layers),
                         "layer_rates": _layer_rates(layers), "synops": _synops(layers),
                         "energy_uj": _energy_uj(layers, params), **(_learning(s) if backend == TORCH else {})})
    return rows


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Plain aligned text (Markdown table) of ``rows``; numbers with 4 significant digits."""
    measures = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ROW_KEYS and not k.endswith("_layers")]
    cols = list(columns or ["run", "task", "backend", "metric_name", "metric", "samples", "mean_rate", "synops", "energy_uj",
                            *measures, "layer_rates"])
    return to_markdown([{c: r.get(c) for c in cols} for r in rows], ".4g")
