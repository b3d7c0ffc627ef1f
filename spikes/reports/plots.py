"""Report figures, drawn with matplotlib's Agg canvas (no pyplot state, no display) and returned as PNG bytes.

Each ``*_figure`` function takes plain data (:class:`RunSummary` objects, dicts, lists) and returns a
``matplotlib.figure.Figure``; :func:`png` renders one to PNG bytes.
"""
from __future__ import annotations

import io
from collections import defaultdict
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from spikes.reports.summary import RunSummary, learning_history
from spikes.reports.table import TORCH, mean_rate

DPI = 90
MARKERS = "osD^v<>ph*"


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (fixed metadata, so equal figures give equal bytes)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def raster_figure(raster: dict, title: str = "") -> Figure:
    """Spike raster of one sample: a dot at (time step t, neuron i) for every spike."""
    fig = Figure(figsize=(6, 2.6))
    ax = fig.add_subplot()
    ax.scatter(raster["t"], raster["i"], s=4, marker="|", color="black", linewidths=0.8)
    ax.set_xlim(-0.5, raster["steps"] - 0.5)
    ax.set_ylim(-0.5, raster["neurons"] - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron")
    ax.set_title(title or f"spike raster: {raster['layer']} ({len(raster['t'])} spikes)", fontsize=9)
    return fig


def rate_histogram_figure(summary: RunSummary, max_layers: int = 6) -> Figure:
    """Per-layer histograms of per-neuron firing rates (``neuron_rates``), or a bar chart of layer rates."""
    layers = list(summary.neuron_rates)[:max_layers]
    if not layers:
        rows = [r for r in summary.per_layer if r.get("firing_rate") is not None]
        fig = Figure(figsize=(6, 2.6))
        ax = fig.add_subplot()
        ax.bar(range(len(rows)), [r["firing_rate"] for r in rows], color="tab:blue")
        ax.set_xticks(range(len(rows)), [r["layer"] for r in rows], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("firing rate (spikes/neuron/step)")
        ax.set_title(f"{summary.label}: per-layer firing rate (no per-neuron rates recorded)", fontsize=9)
        return fig
    fig = Figure(figsize=(min(3 * len(layers), 12), 2.6))
    for k, name in enumerate(layers):
        ax = fig.add_subplot(1, len(layers), k + 1)
        rates = summary.neuron_rates[name]
        ax.hist(rates, bins=20, range=(0.0, max(max(rates, default=0.0), 1e-3)), color="tab:blue")
        ax.set_title(f"{name}\nmean {sum(rates) / max(len(rates), 1):.3g}", fontsize=8)
        ax.set_xlabel("spikes/neuron/step", fontsize=7)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.set_ylabel("neurons", fontsize=8)
    fig.suptitle(f"{summary.label}: firing-rate histograms", fontsize=9, y=1.1)
    return fig


def metric_vs_rate_figure(summaries: Sequence[RunSummary]) -> Figure:
    """Task metric against mean firing rate, one panel per (task, metric); torch filled, backends hollow."""
    groups: dict[tuple[str, str], list[RunSummary]] = defaultdict(list)
    for s in summaries:
        groups[(s.task, s.metric_name)].append(s)
    fig = Figure(figsize=(min(4.2 * len(groups), 13), 3.2))
    for k, ((task, metric_name), runs) in enumerate(groups.items()):
        ax = fig.add_subplot(1, len(groups), k + 1)
        models = sorted({s.model for s in runs})
        for s in runs:
            m = MARKERS[models.index(s.model) % len(MARKERS)]
            r = mean_rate(s.per_layer)
            if r is None:
                continue
            ax.scatter([r], [s.metric], marker=m, color="tab:blue", s=36, label=f"{s.model} ({TORCH})")
            if s.spike_penalty is not None:
                ax.annotate(f"λ={s.spike_penalty:g}", (r, s.metric), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
            for j, (name, b) in enumerate(s.backends.items()):
                rb = mean_rate(b.per_layer)
                if rb is not None and b.metric is not None:
                    ax.scatter([rb], [b.metric], marker=m, facecolors="none", s=36,
                               edgecolors=f"C{j + 1}", label=f"{s.model} ({name})")
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=6, loc="best")
        ax.set_xlabel("mean firing rate (spikes/neuron/step)", fontsize=8)
        ax.set_ylabel(metric_name, fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.tick_params(labelsize=7)
    return fig


def torch_vs_chip_figure(summaries: Sequence[RunSummary]) -> Figure:
    """Per-layer firing rate on each backend against torch, matched by layer name; the diagonal is agreement.
    A backend that ran fewer samples than torch is set against torch on the same samples when it carries them
    (``BackendResult.reference_rates``)."""
    fig = Figure(figsize=(4.6, 4.0))
    ax = fig.add_subplot()
    hi = 0.0
    backends = sorted({b for s in summaries for b in s.backends})
    for i, s in enumerate(summaries):
        torch_rates = {r["layer"]: r["firing_rate"] for r in s.per_layer if r.get("firing_rate") is not None}
        for name, b in s.backends.items():
            ref = b.reference_rates or torch_rates
            pairs = [(ref[r["layer"]], r["firing_rate"]) for r in b.per_layer
                     if r.get("firing_rate") is not None and r["layer"] in ref]
            if not pairs:
                continue
            xs, ys = zip(*pairs)
            hi = max(hi, *xs, *ys)
            ax.scatter(xs, ys, marker=MARKERS[i % len(MARKERS)], color=f"C{backends.index(name)}", s=30,
                       alpha=0.8, label=f"{s.label} / {name}")
    hi = hi * 1.05 or 1.0
    ax.plot([0, hi], [0, hi], color="gray", lw=0.8, ls="--")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel("torch firing rate", fontsize=8)
    ax.set_ylabel("backend firing rate", fontsize=8)
    ax.set_title("per-layer firing rate: torch vs chip backends", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left")
    return fig


def learning_figure(summaries: Sequence[RunSummary], measure: str = "angle_wb") -> Figure:
    """Runs by learning rule: the task metric of each run; the rule's ``measure`` per layer at the end of training
    (the angle between W and the feedback matrix B, in degrees: 0 is backprop's symmetric feedback, 90 unrelated);
    and its mean over layers during training (from the run's ``metrics.jsonl``, where there is one)."""
    with_measure = [s for s in summaries if measure in s.learning]
    histories = {s.label: learning_history(s).get(measure, []) for s in with_measure}
    panels = 1 + bool(with_measure) + any(histories.values())
    fig = Figure(figsize=(4.2 * panels, 3.4))
    ax = fig.add_subplot(1, panels, 1)
    labels = [s.label for s in summaries]
    ax.bar(range(len(summaries)), [s.metric for s in summaries], color=[f"C{i % 10}" for i in range(len(summaries))])
    ax.set_xticks(range(len(summaries)), labels, rotation=45, ha="right", fontsize=7)
    names = sorted({s.metric_name for s in summaries})
    ax.set_ylabel(", ".join(names), fontsize=8)
    lo = min(s.metric for s in summaries)
    ax.set_ylim(max(0.0, lo - 0.1 * abs(lo) - 0.02), None)
    ax.set_title("task metric", fontsize=9)
    ax.tick_params(labelsize=7)
    k = 2
    if with_measure:
        ax = fig.add_subplot(1, panels, k)
        k += 1
        for i, s in enumerate(summaries):
            per_layer = s.learning.get(measure)
            if per_layer:
                ax.plot(range(len(per_layer)), list(per_layer.values()), marker=MARKERS[i % len(MARKERS)],
                        color=f"C{i % 10}", label=s.label)
        longest = max((s.learning[measure] for s in with_measure), key=len)
        ax.set_xticks(range(len(longest)), list(longest), rotation=30, ha="right", fontsize=6)
        ax.set_xlabel("synaptic layer (input to output)", fontsize=8)
        ax.set_ylabel(f"{measure} at the end (degrees)" if measure.startswith("angle") else measure, fontsize=8)
        ax.set_title(f"{measure} per layer", fontsize=9)
        ax.legend(fontsize=6, loc="best")
        ax.tick_params(labelsize=7)
    if any(histories.values()):
        ax = fig.add_subplot(1, panels, k)
        for i, s in enumerate(summaries):
            h = histories.get(s.label) or []
            if h:
                ax.plot([p[0] for p in h], [p[1] for p in h], color=f"C{i % 10}", label=s.label)
        ax.set_xlabel("training step", fontsize=8)
        ax.set_ylabel(f"{measure}, mean over layers", fontsize=8)
        ax.set_title(f"{measure} during training", fontsize=9)
        ax.legend(fontsize=6, loc="best")
        ax.tick_params(labelsize=7)
    return fig
