"""Sparsity comparison reports: run summaries (schema in :mod:`spikes.reports.summary`), the comparison
table (:mod:`spikes.reports.table`), plots (:mod:`spikes.reports.plots`) and the single-file HTML report
(:mod:`spikes.reports.html`).

matplotlib (heavy) is imported only when a report is rendered: ``render_report`` and ``write_report`` load
:mod:`spikes.reports.html` on first access (module ``__getattr__``).
"""
from spikes.reports.summary import (SCHEMA, SUMMARY_FILE, BackendResult, RunSummary, SummaryError, load_summary,
                                    parse_summary, write_summary)
from spikes.reports.table import comparison_rows, format_table, mean_rate

__all__ = ["SCHEMA", "SUMMARY_FILE", "BackendResult", "RunSummary", "SummaryError", "comparison_rows",
           "format_table", "load_summary", "mean_rate", "parse_summary", "render_report", "write_report",
           "write_summary"]


def __getattr__(name):
    if name in ("render_report", "write_report"):
        from spikes.reports import html
        return getattr(html, name)
    raise AttributeError(name)
