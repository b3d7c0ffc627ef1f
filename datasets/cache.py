"""Cache directory and atomic writes for generated data sets.

The cache directory is, in order: the ``cache_dir`` argument, the ``SPIKES_CACHE`` environment
variable, ``~/.cache/spikes``. Files are written with :func:`spikes.io.atomic_write` (temp file beside the
target, fsync, ``os.replace``), so a reader never sees a half-written file.
"""
from __future__ import annotations

import os
from pathlib import Path

from spikes.io import atomic_write

__all__ = ["atomic_write", "cache_dir"]


def cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Resolve (and create) the cache directory."""
    if cache_dir is None:
        cache_dir = os.environ.get("SPIKES_CACHE") or Path.home() / ".cache" / "spikes"
    path = Path(cache_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
