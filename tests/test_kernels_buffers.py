"""The kernels' buffer cache: a block is reused only after every array and tensor viewing it is gone."""
from __future__ import annotations

import gc

import numpy as np
import torch

from spikes.kernels import buffers

SHAPE = (buffers.MIN_BYTES // 4 + 10,)  # just above the size the cache handles


def test_block_reused_only_when_released(monkeypatch):
    monkeypatch.setenv("SPIKES_BUFFER_CACHE_MB", "64")
    buffers.clear()
    a = buffers.empty(SHAPE, np.float32)
    assert a.flags.c_contiguous and a.ctypes.data % 64 == 0
    t = torch.from_numpy(a)[5:]  # a tensor view keeps the block in use
    del a
    gc.collect()
    b = buffers.empty(SHAPE, np.float32)
    assert not np.shares_memory(b, t.numpy())
    address = t.data_ptr() - 5 * 4
    t.fill_(1.0)
    b.fill(2.0)
    assert float(t.max()) == 1.0  # no aliasing while both live
    del t
    gc.collect()
    assert buffers.cached_bytes() == SHAPE[0] * 4
    c = buffers.empty(SHAPE, np.float32)  # the released block, not fresh memory
    assert c.ctypes.data == address
    assert buffers.cached_bytes() == 0
    small = buffers.empty((10,), np.float64)
    assert small.base is None  # small arrays are plain np.empty
    del b, c
    buffers.clear()
    assert buffers.cached_bytes() == 0


def test_cache_limit_and_disable(monkeypatch):
    monkeypatch.setenv("SPIKES_BUFFER_CACHE_MB", str(buffers.MIN_BYTES * 1.5 / 2**20))
    buffers.clear()
    a, b = buffers.empty(SHAPE, np.float32), buffers.empty(SHAPE, np.float32)
    del a, b
    gc.collect()
    assert buffers.cached_bytes() == SHAPE[0] * 4  # only one block fits under the limit
    monkeypatch.setenv("SPIKES_BUFFER_CACHE_MB", "0")
    assert buffers.empty(SHAPE, np.float32).base is None
    z = buffers.zeros((3, 4), np.int32)
    assert z.dtype == np.int32 and not z.any()
    buffers.clear()


def test_single_threaded_blas_limits_openblas_only_inside():
    from threadpoolctl import threadpool_info

    from spikes import kernels

    def blas_threads():
        return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    before = blas_threads()
    assert before, "numpy/scipy's OpenBLAS is loaded"
    with kernels.single_threaded_blas():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before
