"""``spikes compare RUN_DIR ...``: firing-rate sparsity, synaptic ops, energy and task metric across runs and backends.

Each RUN_DIR holds a ``summary.json`` (schema in :mod:`spikes.reports.summary`; the training loop's own
summary is accepted too). Prints one row per (run, backend); ``--html out.html`` also writes the report.
"""
from __future__ import annotations

import argparse
import sys

from spikes.metrics.table import to_csv
from spikes.reports import SummaryError, comparison_rows, format_table, load_summary
from spikes.reports.html import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (or summary.json files)")
    parser.add_argument("--html", metavar="OUT.html", help="also write the single-file HTML report here")
    parser.add_argument("--title", default="spikes: sparsity comparison", help="title of the HTML report")
    parser.add_argument("--csv", metavar="OUT.csv", help="also write the comparison table as CSV")


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
    if args.html:
        write_report(args.html, summaries, title=args.title)
        print(f"wrote {args.html}")
    return 0
