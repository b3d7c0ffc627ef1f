"""Cache directory and atomic writes for generated data sets.

The cache directory is, in order: the ``cache_dir`` argument, the ``SPIKES_CACHE`` environment
variable, ``~/.cache/spikes``. Files are written to a temporary file beside the target and moved
into place with ``os.replace`` so a reader never sees a half-written file.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Resolve (and create) the cache directory."""
    if cache_dir is None:
        cache_dir = os.environ.get("SPIKES_CACHE") or Path.home() / ".cache" / "spikes"
    path = Path(cache_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically rename ``tmp_path`` to ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; caches are meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
