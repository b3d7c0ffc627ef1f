"""Reusable memory for the kernels' large outputs (whole-sequence spikes, membranes, gradients).

A whole sequence is one array (T x B x neurons: a conv layer's is hundreds of MB). glibc serves
allocations above 32 MB with a fresh ``mmap`` and returns them on free, so every training step
page-faults all of its sequence arrays anew: measured here (2-core VM) ~0.27 ms per MB, 62 ms for a
237 MB array that takes 7 ms to fill once its pages are mapped. Per-step libraries allocate small tensors
that glibc keeps in its heap, so they do not pay this.

``empty(shape, dtype)`` hands out arrays of at least ``MIN_BYTES`` from a cache of released blocks of the
same size (mapped memory, contents undefined); a block returns to the cache when the last array or tensor
viewing it is gone (its base is a small lease object whose finaliser puts the block back). The cache keeps
at most ``max_cached_bytes`` of idle blocks (``SPIKES_BUFFER_CACHE_MB``, default 4096; 0 disables it), the
least recently released dropped first; ``clear()`` empties it. Smaller arrays come from ``np.empty``.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

MIN_BYTES = 1 << 16  # below this glibc's heap serves and reuses memory (its mmap threshold starts at 128 KiB)

_ALIGN = 64  # bytes: a cache line, whole AVX-512 vectors
_lock = threading.RLock()
_idle: OrderedDict[int, list[np.ndarray]] = OrderedDict()  # block size -> idle blocks, least recently used first
_idle_bytes = 0


def max_cached_bytes() -> int:
    return int(float(os.environ.get("SPIKES_BUFFER_CACHE_MB", "4096")) * (1 << 20))


class _Lease:
    """Owner of one block while arrays view it; its finaliser returns the block to the cache."""

    __slots__ = ("__array_interface__", "_block", "_nbytes")

    def __init__(self, block: np.ndarray, nbytes: int, shape: tuple[int, ...], dtype: np.dtype):
        self._block, self._nbytes = block, nbytes
        address = block.ctypes.data
        address += -address % _ALIGN
        self.__array_interface__ = dict(shape=shape, typestr=dtype.str, data=(address, False), version=3)

    def __del__(self) -> None:
        try:
            _release(self._block, self._nbytes)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _release(block: np.ndarray, nbytes: int) -> None:
    global _idle_bytes
    limit = max_cached_bytes()
    with _lock:
        if nbytes > limit:
            return
        _idle.setdefault(nbytes, []).append(block)
        _idle.move_to_end(nbytes)
        _idle_bytes += nbytes
        while _idle_bytes > limit:
            size, blocks = next(iter(_idle.items()))
            blocks.pop(0)
            _idle_bytes -= size
            if not blocks:
                del _idle[size]


def _take(nbytes: int) -> np.ndarray | None:
    global _idle_bytes
    with _lock:
        blocks = _idle.get(nbytes)
        if not blocks:
            return None
        block = blocks.pop()
        if not blocks:
            del _idle[nbytes]
        _idle_bytes -= nbytes
        return block


def empty(shape: int | tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array, from the cache when it is large (see the module docstring)."""
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < MIN_BYTES or max_cached_bytes() <= 0:
        return np.empty(shape, dtype)
    block = _take(nbytes)
    if block is None:
        block = np.empty(nbytes + _ALIGN, np.uint8)
    return np.asarray(_Lease(block, nbytes, shape, dtype))


def zeros(shape: int | tuple[int, ...], dtype) -> np.ndarray:
    out = empty(shape, dtype)
    out.fill(0)
    return out


def cached_bytes() -> int:
    """Bytes held in idle blocks."""
    return _idle_bytes


def clear() -> None:
    """Drop all idle blocks (their memory goes back to the system)."""
    global _idle_bytes
    with _lock:
        _idle.clear()
        _idle_bytes = 0
