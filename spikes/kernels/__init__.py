"""Compiled kernels for whole-sequence neuron dynamics (numba, CPU).

numba was chosen over a JIT-built C++ extension, TorchScript and torch.compile (measurements in
``benchmarks/bench_training.py``'s docstring): it needs no compiler on the user's machine, compiles in seconds
(cached on disk after the first use), and its loops run at C speed on numpy views of the tensors. numba is a
core dependency, imported at module top: it costs ~0.2 s at import and the kernels compile on first use.
``available()`` says whether the kernels may be used; callers fall back to the per-step reference loop
otherwise (``spikes.neurons.sequence``). ``triton_neuron`` holds the same neuron recurrences for CUDA tensors
(Triton, imported by ``spikes.neurons.sequence`` where triton is installed).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import numba
import torch


def unavailable_reason() -> str | None:
    """Why the compiled kernels are not used (None when they are): ``SPIKES_REFERENCE=1`` disables them."""
    if os.environ.get("SPIKES_REFERENCE", "") not in ("", "0"):
        return "SPIKES_REFERENCE is set"
    return None


def available() -> bool:
    return unavailable_reason() is None


_BLAS_CONTROLLER = None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS (numpy's and scipy's OpenBLAS) limited to one thread while a kernel that calls it from its own numba
    threads runs: OpenBLAS would start its threads inside each of ours and leave them spinning after each call, which
    took the cores from numba's (recurrent backward at N = 200: 328 ms, 75 ms with one BLAS thread)."""
    global _BLAS_CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def set_threads() -> int:
    """Use as many numba threads as torch uses (at most numba's pool); returns the count."""
    n = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n
