"""Atomic file writes: the one writer behind every checkpoint, config, cache file, summary and report.

A file is written to a temporary file beside its target, flushed to disk (``fsync``), then moved into place
with ``os.replace``: a reader, or a run killed at any instant, sees the old file or the new one, never half
of one. The temporary name is ``.<name>.<random>.tmp``, so ``stale_temporaries`` finds what a killed write
left. This module imports nothing of spikes (it sits below every layer).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(target: str | os.PathLike, write: Callable[[Path], None], mode: int = 0o644) -> Path:
    """Call ``write(tmp_path)``, fsync the temp file, give it ``mode`` and rename it to ``target``; returns it.

    The target's folder is created if needed. On any error (or a KeyboardInterrupt) the temp file is removed
    and the old target, if any, is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600; results and caches are meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    return atomic_write(target, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    return atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(target: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON (with a final newline) to ``target`` atomically."""
    return atomic_write_text(target, json.dumps(obj, indent=indent) + "\n")


def atomic_torch_save(target: str | os.PathLike, obj: Any) -> Path:
    """``torch.save(obj)`` to ``target`` atomically (torch is imported here, on use only)."""
    import torch

    return atomic_write(target, lambda tmp: torch.save(obj, tmp))


def stale_temporaries(folder: str | os.PathLike, name: str) -> list[Path]:
    """Temp files that a killed :func:`atomic_write` of ``folder/name`` left behind."""
    return sorted(Path(folder).glob(f".{name}.*.tmp"))
