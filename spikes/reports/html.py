"""A single-file HTML report: comparison table, per-layer tables and PNG plots embedded as base64.

``write_report(path, summaries)`` renders everything and writes the file atomically. The page has no
external resources (no scripts, no stylesheets, no fonts to fetch), so it opens offline.
"""
from __future__ import annotations

import base64
import html
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from spikes.energy import LOIHI1, EnergyParameters
from spikes.io import atomic_write_text
from spikes.reports.plots import (learning_figure, metric_vs_rate_figure, png, raster_figure,
                                   rate_histogram_figure, torch_vs_chip_figure)
from spikes.reports.summary import RunSummary
from spikes.reports.table import activity_views, comparison_rows

CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}td,th{border:1px solid #bbb;padding:3px 7px}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.4em}figcaption{font-size:12px;color:#555}.note{font-size:12px;color:#555}"""


def _img(fig, caption: str) -> str:
    data = base64.b64encode(png(fig)).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _cell(v) -> str:
    if v is None:
        return "<td></td>"
    if isinstance(v, float):
        return f'<td class="n">{v:.4g}</td>'
    if isinstance(v, int):
        return f'<td class="n">{v}</td>'
    return f"<td>{html.escape(str(v))}</td>"


def html_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_report(summaries: Sequence[RunSummary], title: str = "spikes: sparsity comparison",
                  params: EnergyParameters = LOIHI1, notes: Sequence[str] = ()) -> str:
    """The report as one HTML string (all plots inline)."""
    if not summaries:
        raise ValueError("render_report: no run summaries given")
    rows = comparison_rows(summaries, params)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='note'>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from "
             f"{len(summaries)} run(s).</p>"]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    parts.append("<h2>Comparison</h2>")
    measures = list(dict.fromkeys(k for s in summaries for k in s.learning))
    parts.append(html_table(rows, ["run", "task", "backend", "metric_name", "metric", "samples", "mean_rate", "synops",
                                   "energy_uj", *measures, "layer_rates"]))
    parts.append(f"<p class='note'>mean_rate: spikes per neuron per time step over all spiking layers. synops: "
                 f"synaptic operations per sample (on a backend: counted on the lowered network it runs). "
                 f"samples: test samples a backend ran. energy_uj: estimated energy per sample in microjoules, "
                 f"{html.escape(params.source)}; neuron updates are all charged at the active rate.</p>")
    parts.append("<h2>Accuracy / task metric vs firing rate</h2>")
    parts.append(_img(metric_vs_rate_figure(summaries),
                      "task metric vs mean firing rate (filled: torch, hollow: deployed backends)"))
    if any(s.learning for s in summaries):
        parts.append("<h2>Learning rules</h2>")
        parts.append(_img(learning_figure(summaries), "task metric per run; the angle between W and the feedback "
                                                      "matrix B per layer at the end and during training"))
    if any(s.backends for s in summaries):
        parts.append("<h2>Torch vs chip activity</h2>")
        parts.append(_img(torch_vs_chip_figure(summaries), "per-layer firing rate, torch vs backends"))
    for s in summaries:
        parts.append(f"<h2>{html.escape(s.label)}</h2><p class='note'>model {html.escape(s.model)}, task "
                     f"{html.escape(s.task)}, {html.escape(s.metric_name)} = {s.metric:.4g}"
                     + (f", spike penalty {s.spike_penalty:g}" if s.spike_penalty is not None else "") + "</p>")
        layer_rows = []
        for backend, _, layers in activity_views(s):
            layer_rows += [{"backend": backend, **r} for r in layers]
        parts.append(html_table(layer_rows, ["backend", "layer", "firing_rate", "density", "synops", "neurons",
                                             "steps"]))
        if s.raster is not None:
            parts.append(_img(raster_figure(s.raster), f"{s.label}: spike raster of layer "
                                                             f"{s.raster['layer']}, one test sample"))
        parts.append(_img(rate_histogram_figure(s), f"{s.label}: per-layer firing rates"))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(path: str | os.PathLike, summaries: Sequence[RunSummary], title: str = "spikes: sparsity comparison",
                 params: EnergyParameters = LOIHI1, notes: Sequence[str] = ()) -> Path:
    """Render and write the report atomically (temp file + os.replace); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, render_report(summaries, title, params, notes))
    return p
