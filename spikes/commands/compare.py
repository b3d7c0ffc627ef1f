"""``spikes compare RUN_DIR ...``: firing-rate sparsity, synaptic ops, energy and task metric across runs and backends.

Each RUN_DIR holds a ``summary.json`` (schema in :mod:`spikes.reports.summary`; the training loop's own
summary is accepted too). Prints one row per (run, backend), with the learning rule's measurements where the runs
have them (the alignment rules' angle between W and B, ``angle_wb``, and between their update and the true
gradient, ``angle_grad``, means over layers); ``--html out.html`` also writes the report, ``--plot out.png`` the
figure: task metric per run, and the angles per layer at the end and during training (or, for runs without
learning-rule measurements, task metric vs firing rate).
"""
from __future__ import annotations

import argparse
import sys

from spikes.io import atomic_write_bytes
from spikes.metrics.table import to_csv
from spikes.reports import SummaryError, comparison_rows, format_table, load_summary
from spikes.reports.html import write_report
from spikes.reports.plots import learning_figure, metric_vs_rate_figure, png


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (or summary.json files)")
    parser.add_argument("--html", metavar="OUT.html", help="also write the single-file HTML report here")
    parser.add_argument("--title", default="spikes: sparsity comparison", help="title of the HTML report")
    parser.add_argument("--csv", metavar="OUT.csv", help="also write the comparison table as CSV")
    parser.add_argument("--plot", metavar="OUT.png", help="also write the comparison figure (PNG)")


def run(args: argparse.Namespace) -> int:
    try:
        summaries = [load_summary(p) for p in args.runs]
    except SummaryError as e:
        print(f"spikes compare: error: {e}", file=sys.stderr)
        return 2
    rows = comparison_rows(summaries)
    print(format_table(rows))
    if args.csv:
        to_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        figure = (learning_figure(summaries) if any(s.learning for s in summaries)
                  else metric_vs_rate_figure(summaries))
        atomic_write_bytes(args.plot, png(figure))
        print(f"wrote {args.plot}")
    if args.html:
        write_report(args.html, summaries, title=args.title)
        print(f"wrote {args.html}")
    return 0
