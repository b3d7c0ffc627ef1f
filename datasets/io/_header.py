"""Text headers of Prophesee RAW and DAT files: ``%``-prefixed lines before the binary payload."""
from __future__ import annotations

import re
from pathlib import Path

from ..events import EventFileError


def split_header(data: bytes, path: Path | str) -> tuple[dict[str, str], int]:
    """Return (key -> value of every ``% key value`` line, byte offset of the payload).

    The header ends at the first line not starting with ``%`` or after a ``% end`` line.
    """
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos : pos + 1] == b"%":
        end = data.find(b"\n", pos)
        if end < 0:
            raise EventFileError(f"{path}: truncated header (no newline after byte {pos})")
        line = data[pos + 1 : end].decode("latin-1").strip()
        pos = end + 1
        if line == "end":
            break
        key, _, value = line.partition(" ")
        fields[key.lower()] = value.strip()
    return fields, pos


def header_geometry(fields: dict[str, str]) -> tuple[int, int] | None:
    """(W, H) from ``% geometry WxH``, ``% format EVT3;height=H;width=W`` or ``% Width``/``% Height`` lines."""
    if "geometry" in fields:
        m = re.fullmatch(r"(\d+)\s*x\s*(\d+)", fields["geometry"])
        if m:
            return int(m.group(1)), int(m.group(2))
    if "format" in fields:
        kv = dict(part.split("=", 1) for part in fields["format"].split(";") if "=" in part)
        if "width" in kv and "height" in kv:
            return int(kv["width"]), int(kv["height"])
    if "width" in fields and "height" in fields:
        return int(fields["width"]), int(fields["height"])
    return None
