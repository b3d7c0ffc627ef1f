"""A tidy table: a list of row dicts with the same keys, written as CSV or Markdown (no pandas needed)."""
from __future__ import annotations

import csv
import io
import os

from spikes.io import atomic_write_text
from typing import Any, Sequence


def _columns(rows: Sequence[dict]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    return cols


def _fmt(value: Any, float_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, float_format)
    return str(value)


def to_csv(rows: Sequence[dict], path: str | os.PathLike | None = None) -> str:
    """The rows as CSV text (None -> empty cell); also written atomically to ``path`` when given."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    text = buf.getvalue()
    if path is not None:
        atomic_write_text(path, text)
    return text


def to_markdown(rows: Sequence[dict], float_format: str = ".4g") -> str:
    """The rows as a GitHub Markdown table, floats formatted with ``float_format``."""
    cols = _columns(rows)
    cells = [[_fmt(row.get(c), float_format) for c in cols] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines)


