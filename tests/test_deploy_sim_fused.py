"""The fused event-driven Dense/Sparse/Conv + LIF kernels of ``sim`` (``kernels.*_lif_events``) against the
matmul reference path (``fused=False``) and against Lava itself, on hand-built fixed-point networks: weight
exponents of both signs, graded integer inputs of several dtypes, delays above one, batch 1, silent input,
strided/dilated/grouped/padded convolutions, and inputs large enough to wrap u (24 and 32 bits) and
saturate v."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from spikes.deploy import kernels, sim
from spikes.graph import Conv2d
from spikes.deploy.quantize import QNetwork, QPopulation, QProjection
from spikes.deploy.sim import simulate


def _pop(name: str, shape: tuple[int, ...], rng: np.random.Generator, vth: int | None = None,
         bias: int = 300, bias_exp: int = 2) -> QPopulation:
    n = int(np.prod(shape))
    return QPopulation(name, shape, du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)),
                       vth=int(vth if vth is not None else rng.integers(20, 600)),
                       bias_mant=rng.integers(-bias, bias + 1, n), bias_exp=bias_exp, scale=1.0, latency=0)


def _even(rng: np.random.Generator, shape, limit: int = 254) -> np.ndarray:
    """Weights Lava keeps unchanged: even integers in [-limit, limit]."""
    return 2 * rng.integers(-limit // 2, limit // 2 + 1, size=shape)


def _dense_net(seed: int, exp: int, delay: int = 1, k: int = 12, n: int = 40, kind: str = "dense",
               limit: int = 254) -> QNetwork:
    """input (k,) -> dense/sparse (exp, delay) -> lif1 (n,) -> dense -> lif2 (7,)."""
    rng = np.random.default_rng(seed)
    w1 = _even(rng, (n, k), limit)
    if kind == "sparse":
        w1 = sp.csr_matrix(w1 * (rng.random((n, k)) < 0.3))
    pops = {"lif1": _pop("lif1", (n,), rng), "lif2": _pop("lif2", (7,), rng, vth=200)}
    projs = [QProjection("input", "lif1", kind, w1, exp, delay, False),
             QProjection("lif1", "lif2", "dense", _even(rng, (7, n)), int(rng.integers(-2, 3)), 2, False)]
    return QNetwork({"input": (k,)}, pops, projs, {}, sequence=["lif1", "lif2"])


def _conv_net(seed: int, in_shape=(2, 7, 6), c_out: int = 4, kernel=(3, 3), stride=1, padding=1, dilation=1,
              groups: int = 1, delay: int = 1) -> QNetwork:
    """input (C, H, W) -> conv -> lif1 -> conv 3x3 (delay 2) -> lif2."""
    rng = np.random.default_rng(seed)
    w = _even(rng, (c_out, in_shape[0] // groups, *kernel))
    conv = Conv2d(w.astype(np.float64), in_shape, None, stride, padding, dilation, groups)
    w2 = _even(rng, (3, c_out, 3, 3))
    conv2 = Conv2d(w2.astype(np.float64), conv.output_shape, None, 1, 1)
    pops = {"lif1": _pop("lif1", conv.output_shape, rng), "lif2": _pop("lif2", conv2.output_shape, rng, vth=300)}
    projs = [QProjection("input", "lif1", "conv", w, 0, delay, False, conv),
             QProjection("lif1", "lif2", "conv", w2, 0, 2, False, conv2)]
    return QNetwork({"input": in_shape}, pops, projs, {}, sequence=["lif1", "lif2"])


def _overflow_net(seed: int, exp: int) -> QNetwork:
    """Strong weights and a large bias: u wraps (24-bit, and 32-bit with big graded inputs), v saturates."""
    rng = np.random.default_rng(seed)
    pops = {"lif1": QPopulation("lif1", (16,), 0, 0, 131071, rng.integers(3000, 4096, 16), 7, 1.0, 0)}
    projs = [QProjection("input", "lif1", "dense", _even(rng, (16, 8)) + 240 * (rng.random((16, 8)) < 0.5), exp,
                         1, False)]
    projs[0].weight = np.clip(projs[0].weight, -254, 254) // 2 * 2
    return QNetwork({"input": (8,)}, pops, projs, {}, sequence=["lif1"])


def _input(net: QNetwork, steps: int, batch: int, seed: int, high: int = 3, rate: float = 0.4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = net.inputs["input"]
    x = rng.integers(1, high + 1, size=(steps, batch, *shape)) * (rng.random((steps, batch, *shape)) < rate)
    return x.astype(np.float64)


CASES = {
    "dense e>0": lambda: _dense_net(1, 3),
    "dense e=0": lambda: _dense_net(2, 0),
    "dense e<0": lambda: _dense_net(3, -3, k=60),
    "dense delay 3": lambda: _dense_net(4, 1, delay=3),
    "sparse e<0": lambda: _dense_net(5, -2, kind="sparse"),
    "sparse delay 2": lambda: _dense_net(6, 2, delay=2, kind="sparse"),
    "conv": lambda: _conv_net(7),
    "conv stride 2": lambda: _conv_net(8, stride=2, padding=1),
    "conv dilation 2, pad 2": lambda: _conv_net(9, dilation=2, padding=2),
    "conv groups 2": lambda: _conv_net(10, in_shape=(4, 6, 5), c_out=6, groups=2),
    "conv 5x3 no pad, stride (2, 1)": lambda: _conv_net(11, in_shape=(3, 9, 8), kernel=(5, 3), stride=(2, 1), padding=0),
    "conv 1x1, 16 channels, delay 2": lambda: _conv_net(12, c_out=16, kernel=(1, 1), padding=0, delay=2),
    "overflow": lambda: _overflow_net(13, 7),
    # channel counts that are multiples of 8 on planes of 64k pixels: spikes leave the channels-last
    # update through the bit-transposing packer (kernels._channels_first_bits)
    "conv 8 channels, 8x8 plane": lambda: _conv_net(14, in_shape=(2, 8, 8), c_out=8),
    "conv 16 channels, 16x8 plane, groups 2": lambda: _conv_net(15, in_shape=(4, 16, 8), c_out=16, groups=2),
}


def _assert_same(a: dict, b: dict, net: QNetwork, what: str) -> None:
    for p in net.populations:
        for k in ("spikes", "u", "v"):
            assert np.array_equal(a[p][k], b[p][k]), (what, p, k)
    assert a["_overflow"] == b["_overflow"], what


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_equals_reference(case):
    net = CASES[case]()
    for batch, graded, dtype in ((3, True, np.float64), (1, True, np.int64), (2, False, np.uint8), (2, False, bool),
                                 (2, True, np.int32), (2, True, np.uint8), (1, True, np.int8)):
        x = _input(net, 25, batch, 7, high=3 if graded else 1).astype(dtype)
        _assert_same(simulate(net, {"input": x}), simulate(net, {"input": x}, fused=False), net,
                     f"{case} batch {batch} {np.dtype(dtype).name}")
    zero = np.zeros((10, 2, *net.inputs["input"]))
    _assert_same(simulate(net, {"input": zero}), simulate(net, {"input": zero}, fused=False), net, f"{case} silent")
    if case != "overflow":
        assert any(simulate(net, {"input": _input(net, 25, 2, 7)})[p]["spikes"].any() for p in net.populations)


def test_overflow_case_wraps_u_and_saturates_v():
    """The overflow network exercises Lava's 24-bit u wrap, int32 wrap of u's update and v's saturation."""
    net = CASES["overflow"]()
    out = simulate(net, {"input": _input(net, 30, 2, 3, high=600)})
    wraps, sats = out["_overflow"]["lif1"]
    assert wraps > 0 and sats > 0
    x = _input(net, 30, 2, 3, high=600)
    p = net.projections[0]
    a = (x.astype(np.int64) @ p.weight.T.astype(np.int64)) << p.weight_exp
    assert (np.abs(a) << 6).max() >= 2**31        # beyond int32 before the LIF's wrap


def test_fused_falls_back_when_int32_could_overflow():
    """A negative exponent needs the exact sum: inputs that could leave int32 take the matmul path; so do
    weights beyond int16 (never from ``quantize``: Lava's weights have 8 bits)."""
    net = _dense_net(20, -6, k=12, n=20)
    x = _input(net, 10, 2, 1, high=10**7)
    proj = net.projections[0]
    assert sim._fused_lif(net.populations["lif1"], proj, x, float(x.max()), {}) is None
    _assert_same(simulate(net, {"input": x}), simulate(net, {"input": x}, fused=False), net, "fallback")
    for case in ("dense e=0", "sparse delay 2", "conv groups 2"):
        net = CASES[case]()
        proj = net.projections[0]
        proj.weight = proj.weight * 200          # up to 50,800: beyond int16
        x = _input(net, 10, 2, 1)
        assert sim._fused_lif(net.populations["lif1"], proj, x, float(x.max()), {}) is None, case
        _assert_same(simulate(net, {"input": x}), simulate(net, {"input": x}, fused=False), net, case)


def test_scan_finds_the_non_zero_entries_of_every_dtype():
    from numba import njit

    @njit
    def scan_all(src, words):
        idx = np.empty(src.shape[1], np.int32)
        val = np.empty(src.shape[1], np.int32)
        out = []
        for r in range(src.shape[0]):
            m = kernels._scan(src, words, r, idx, val)
            out.append((idx[:m].copy(), val[:m].copy()))
        return out

    rng = np.random.default_rng(0)
    for k in (5, 8, 21, 64):
        x = rng.integers(-3, 4, size=(9, k)) * (rng.random((9, k)) < 0.3)
        x[0] = 0
        for dtype in (np.uint8, np.int8, np.int16, np.int32, np.int64, np.float32, np.float64):
            xd = np.ascontiguousarray(np.abs(x).astype(dtype) if dtype == np.uint8 else x.astype(dtype))
            for r, (idx, val) in enumerate(scan_all(xd, kernels.words_of(xd))):
                nz = np.flatnonzero(xd[r])
                assert idx.tolist() == nz.tolist(), (k, dtype)
                assert val.tolist() == xd[r, nz].astype(np.int64).tolist(), (k, dtype)


def test_input_must_hold_integers():
    net = _dense_net(1, 0)
    x = _input(net, 5, 1, 0)
    for bad in (0.5, np.inf, np.nan):
        y = x.copy()
        y[2, 0, 3] = bad
        with pytest.raises(ValueError, match="integers"):
            simulate(net, {"input": y})


def test_simulate_is_deterministic():
    net = _conv_net(7)
    x = _input(net, 20, 4, 2)
    a, b = simulate(net, {"input": x}), simulate(net, {"input": x})
    _assert_same(a, b, net, "repeat")


@pytest.mark.parametrize("case", ["dense e<0", "sparse delay 2", "conv groups 2", "overflow"])
def test_work_shared_between_threads_gives_the_same_result(case, monkeypatch):
    """With helper threads forced on (any work size) the items are split between threads however they
    happen to claim them: results equal the one-thread run and the reference path."""
    import numba

    net = CASES[case]()
    x = _input(net, 30, 6, 5, high=600 if case == "overflow" else 3)
    ref = simulate(net, {"input": x}, fused=False)
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 0)
    saved = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            for _ in range(3):
                _assert_same(simulate(net, {"input": x}), ref, net, f"{case}, {threads} threads")
    finally:
        numba.set_num_threads(saved)


@pytest.mark.slow
def test_fused_kernels_are_bit_exact_with_lava_fixed():
    """Every case above (batch 1, graded input; the overflow case with inputs that wrap u at 32 bits) against
    Lava's own fixed-point models, in one Lava run."""
    from spikes.deploy.lava_backend import run_lava

    names = sorted(CASES)
    nets = [CASES[c]() for c in names]
    xs = [_input(net, 20, 1, 40 + i, high=600 if c == "overflow" else 3) for i, (c, net) in enumerate(zip(names, nets))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lava = run_lava([(net, {"input": x[:, 0]}) for net, x in zip(nets, xs)], fixed=True)
    for case, net, x, ref in zip(names, nets, xs, lava):
        out = simulate(net, {"input": x})
        for p in net.populations:
            assert np.array_equal(out[p]["spikes"][:, 0], ref[p]["spikes"]), (case, p, "spikes")
            assert np.array_equal(out[p]["u"][0], ref[p]["u"].astype(np.int64)), (case, p, "u")
            assert np.array_equal(out[p]["v"][0], ref[p]["v"].astype(np.int64)), (case, p, "v")
