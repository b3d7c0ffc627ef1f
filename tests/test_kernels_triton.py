"""The Triton kernels (``spikes.kernels.triton_neuron``, the GPU path) on a machine without a GPU.

1. Under Triton's interpreter (``TRITON_INTERPRET=1``, which must be set before triton is imported, so this file
   runs itself in a fresh pytest process with it set; the rest of the session never sees it): the interpreter
   executes the kernels' code in numpy on CPU tensors. Against the per-step reference loop (autograd through
   ``neuron_step``) and the numba kernels: spikes and final state identical, gradients (input, initial state,
   W_rec, s0, tensor alpha, W_in / b_in) to 1e-5 relative in float32 (tolerance ``1e-5 * max |reference|``
   elementwise) and 1e-10 in float64, over the neuron kinds and options (resets, bias, refractoriness, CuBa
   current, ALIF adaptation, the four surrogates, feedback matrix, channels-last layout).
2. In this process: every kernel compiles for a GPU (sm_90 PTX and cubin, triton's bundled ptxas) in the flag
   combinations the tests run, without fused multiply-adds (the interpreter cannot catch a kernel that only
   fails to compile, or that would round differently on the GPU).
3. Where CUDA is available, the tests of 1. also run in this process on the GPU (compiled kernels; their
   "numba" comparison is then run_sequence's own dispatch, i.e. Triton again).
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikes import kernels
from spikes.neurons import NeuronParameters, NeuronState
from spikes.neurons import sequence as S
from spikes.surrogates import KINDS, Surrogate

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"

pytestmark = pytest.mark.skipif(S.TK is None, reason="triton is not installed")

CASES = {
    "lif_subtract": dict(alpha=0.9),
    "lif_zero_bias": dict(alpha=0.8, reset="zero", bias=0.05, surrogate=Surrogate("fast_sigmoid")),
    "if": dict(alpha=1.0, reset="zero", surrogate=Surrogate("straight_through", 0.5)),
    "cuba": dict(alpha=0.9, alpha_syn=0.7, reset="zero", surrogate=Surrogate("triangle", 0.3, 0.8)),
    "alif": dict(alpha=0.95, beta=0.6, rho=0.9),
    "refractory": dict(alpha=0.9, refractory_steps=2, v_th=0.8),
    "everything": dict(alpha=0.85, alpha_syn=0.5, beta=0.3, rho=0.8, refractory_steps=1, reset="zero", bias=0.02),
}


def _tol(dtype, reference: torch.Tensor) -> dict:
    if dtype == torch.float64:
        return dict(rtol=1e-10, atol=1e-10 * float(reference.abs().max()))
    return dict(rtol=1e-5, atol=1e-5 * float(reference.abs().max()))


def _loss(s, state, w):
    return (s * w).sum() + state.v.square().sum() + 0.5 * state.i.sum() + 0.3 * state.a.sum()


def _same_forward(s1, st1, s2, st2) -> None:
    assert torch.equal(s1, s2), "spikes differ"
    for name, a, b in zip("viar", st1, st2):
        assert torch.equal(a, b), f"final state.{name} differs"


if not INTERPRETED:
    def test_kernels_under_the_interpreter():
        """Runs this file again in a fresh process with TRITON_INTERPRET=1 (the tests in the ``else`` branch)."""
        env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "--noconftest", "-p", "no:cacheprovider",
                               str(Path(__file__).resolve())], env=env, capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], timeout=600)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        assert " passed" in proc.stdout and " skipped" not in proc.stdout, proc.stdout[-2000:]

    def _signature(fn, dtype: str, constexprs: dict) -> dict:
        import inspect
        out = {}
        for name in inspect.signature(fn.fn).parameters:
            if name in constexprs:
                out[name] = "constexpr"
            elif name.startswith("refr_"):
                out[name] = "*u8"
            elif name in ("r0_ptr", "r_ptr"):
                out[name] = "*i32"
            elif name == "acc_ptr":
                out[name] = "*fp64"
            elif name.endswith("_ptr"):
                out[name] = f"*{dtype}"
            else:
                out[name] = "i32"
        return out

    @pytest.mark.parametrize("everything", [False, True])
    def test_kernels_compile_for_a_gpu(everything):
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        TK = S.TK
        flags = dict(HAS_CURRENT=everything, ADAPTIVE=everything, REFRACTORY=everything, ZERO_RESET=everything,
                     BLOCK_M=TK.BLOCK)
        for fn, extra in ((TK.sequence_forward, dict(HAS_BIAS=True)), (TK.recurrent_step_forward, dict(HAS_BIAS=True)),
                          (TK.sequence_backward, dict(CODE=0, NEED_GALPHA=everything)),
                          (TK.recurrent_step_backward, dict(CODE=2, NEED_GALPHA=everything))):
            for dtype in ("fp32", "fp64") if everything else ("fp32",):
                constexprs = dict(flags, **extra)
                compiled = triton.compile(ASTSource(fn=fn, signature=_signature(fn, dtype, constexprs),
                                                    constexprs=constexprs),
                                          target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4,
                                                                                         enable_fp_fusion=False))
                assert "fma.rn" not in compiled.asm["ptx"], f"{fn.fn.__name__}: fused multiply-add in the PTX"
                assert compiled.asm["cubin"], fn.fn.__name__

    def test_other_devices_are_named():
        p = NeuronParameters()
        assert "CUDA (Triton)" in S.fast_path_unsupported(torch.zeros(3, 2, 4, device="meta"), p)
        assert S._backend(torch.zeros(1, device="cpu")) == "numba"

if INTERPRETED or torch.cuda.is_available():
    DEVICE = "cpu" if INTERPRETED else "cuda"

    @pytest.fixture(autouse=True)
    def _seed_and_device():
        torch.manual_seed(0)
        torch.set_default_device(DEVICE)
        yield
        torch.set_default_device(None)

    def _inputs(shape, dtype, scale=0.7, shift=0.25):
        x = (torch.randn(shape, dtype=dtype) * scale + shift).requires_grad_()
        return x, torch.randn(shape, dtype=dtype)

    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("case", sorted(CASES))
    def test_sequence_matches_reference_and_numba(case, dtype):
        p = NeuronParameters(**CASES[case])
        x, w = _inputs((30, 3, 5), dtype)
        s1, st1 = S.run_sequence_triton(x, p)
        s2, st2 = S.run_sequence_reference(x, p)
        s3, st3 = S.run_sequence(x, p)  # numba (CPU)
        _same_forward(s1, st1, s2, st2)
        _same_forward(s1, st1, s3, st3)
        assert 0.05 < float(s1.detach().mean()) < 0.9
        g1, g2, g3 = (torch.autograd.grad(_loss(s, st, w), x)[0] for s, st in ((s1, st1), (s2, st2), (s3, st3)))
        assert g2.abs().sum() > 0
        torch.testing.assert_close(g1, g2, **_tol(dtype, g2))
        torch.testing.assert_close(g1, g3, **_tol(dtype, g3))

    @pytest.mark.parametrize("kind", KINDS)
    def test_every_surrogate_gradient(kind):
        p = NeuronParameters(alpha=0.9, beta=0.2, rho=0.9, surrogate=Surrogate(kind))
        x, w = _inputs((25, 2, 6), torch.float64)
        g1 = torch.autograd.grad((S.run_sequence_triton(x, p)[0] * w).sum(), x)[0]
        g2 = torch.autograd.grad((S.run_sequence_reference(x, p)[0] * w).sum(), x)[0]
        assert g2.abs().sum() > 0
        torch.testing.assert_close(g1, g2, **_tol(torch.float64, g2))

    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    def test_sequence_initial_state_and_learnable_alpha(dtype):
        alpha = torch.tensor(0.8, dtype=dtype, requires_grad=True)
        p = NeuronParameters(alpha=alpha, reset="zero", refractory_steps=1, alpha_syn=0.3, beta=0.2, rho=0.9)
        x, w = _inputs((25, 2, 7), dtype)
        leaves = [torch.rand(2, 7, dtype=dtype, requires_grad=True) for _ in range(3)]
        state = NeuronState(*leaves, torch.randint(0, 2, (2, 7), dtype=torch.int32))
        s1, st1 = S.run_sequence_triton(x, p, state)
        s2, st2 = S.run_sequence_reference(x, p, state)
        _same_forward(s1, st1, s2, st2)
        g1 = torch.autograd.grad(_loss(s1, st1, w), (x, alpha, *leaves))
        g2 = torch.autograd.grad(_loss(s2, st2, w), (x, alpha, *leaves))
        for name, a, b in zip(("x", "alpha", "v0", "i0", "a0"), g1, g2):
            assert b.abs().sum() > 0, name
            torch.testing.assert_close(a, b, **_tol(dtype, b), msg=lambda m, name=name: f"d/d{name}: {m}")

    def test_channels_last_layout_is_kept():
        p = NeuronParameters(**CASES["everything"])
        x, w = _inputs((8, 2, 3, 4, 5), torch.float64)
        x_cl = x.detach().permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3).requires_grad_()
        s1, st1 = S.run_sequence_triton(x_cl, p)
        s2, st2 = S.run_sequence_reference(x, p)
        assert s1.stride() == x_cl.stride()
        _same_forward(s1, st1, s2, st2)
        g1 = torch.autograd.grad(_loss(s1, st1, w), x_cl)[0]
        g2 = torch.autograd.grad(_loss(s2, st2, w), x)[0]
        torch.testing.assert_close(g1, g2, **_tol(torch.float64, g2))

    RECURRENT = [(case, torch.float64) for case in sorted(CASES)] + [("lif_subtract", torch.float32),
                                                                      ("everything", torch.float32)]

    @pytest.mark.parametrize("case,dtype", RECURRENT)
    def test_recurrent_matches_reference_and_numba(case, dtype):
        p = NeuronParameters(**CASES[case])
        x, w = _inputs((30, 4, 9), dtype, scale=0.5, shift=0.2)
        w_rec = (torch.randn(9, 9, dtype=dtype) * 0.4).requires_grad_()
        s0 = (torch.rand(4, 9) < 0.3).to(dtype).requires_grad_()
        v0 = torch.rand(4, 9, dtype=dtype, requires_grad=True)
        state = NeuronState(v0, torch.zeros_like(v0), torch.zeros_like(v0), torch.zeros(4, 9, dtype=torch.int32))
        runs = [S.run_recurrent_triton(x, w_rec, p, state, s0), S.run_recurrent_reference(x, w_rec, p, state, s0)]
        if dtype == torch.float64:  # numba sums the active columns of W_rec, not BLAS's order: float32 spikes
            runs.append(S.run_recurrent(x, w_rec, p, state, s0))  # may flip, float64 states differ in the last bits
        (s1, st1), *others = runs
        assert 0.05 < float(s1.detach().mean()) < 0.9
        g1 = torch.autograd.grad(_loss(s1, st1, w), (x, w_rec, s0, v0))
        for k, (s2, st2) in enumerate(others):
            if k == 0:  # the reference loop: the same matmul, so the same bits
                _same_forward(s1, st1, s2, st2)
            else:
                assert torch.equal(s1, s2), "spikes differ from numba's"
                for a, b in zip(st1, st2):
                    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
            g2 = torch.autograd.grad(_loss(s2, st2, w), (x, w_rec, s0, v0))
            for name, a, b in zip(("x", "w_rec", "s0", "v0"), g1, g2):
                torch.testing.assert_close(a, b, **_tol(dtype, b), msg=lambda m, name=name: f"d/d{name}: {m}")

    def test_recurrent_learnable_alpha_and_feedback_matrix():
        alpha = torch.tensor(0.85, dtype=torch.float64, requires_grad=True)
        p = NeuronParameters(alpha=alpha, alpha_syn=0.4, refractory_steps=1, surrogate=Surrogate("fast_sigmoid"))
        x, w = _inputs((25, 3, 8), torch.float64, scale=0.5, shift=0.2)
        w_rec = (torch.randn(8, 8, dtype=torch.float64) * 0.4).requires_grad_()
        b_rec = torch.randn(8, 8, dtype=torch.float64) * 0.4
        for feedback in (None, lambda: b_rec):
            s1, st1 = S.run_recurrent_triton(x, w_rec, p, feedback=feedback)
            s2, st2 = S.run_recurrent_reference(x, w_rec, p, feedback=feedback)
            _same_forward(s1, st1, s2, st2)
            g1 = torch.autograd.grad(_loss(s1, st1, w), (x, w_rec, alpha))
            g2 = torch.autograd.grad(_loss(s2, st2, w), (x, w_rec, alpha))
            for a, b in zip(g1, g2):
                torch.testing.assert_close(a, b, **_tol(torch.float64, b))
        assert not torch.allclose(g1[0], torch.autograd.grad(_loss(*S.run_recurrent_reference(x, w_rec, p), w), x)[0])

    @pytest.mark.skipif(not INTERPRETED, reason="CPU tensors given CUDA's backend choice: interpreter only")
    def test_dispatch_runs_the_triton_path(monkeypatch):
        """With the backend choice of a CUDA tensor: the LIF module, RecurrentLIF (dense input) and
        run_recurrent_events (current built densely) run the Triton kernels and equal the numba path."""
        from spikes.layers.recurrent import RecurrentLIF
        from spikes.neurons import LIF
        calls = []
        for name in ("run_sequence_triton", "run_recurrent_triton"):
            real = getattr(S, name)
            monkeypatch.setattr(S, name, lambda *a, real=real, name=name, **k: calls.append(name) or real(*a, **k))
        layer = RecurrentLIF(6, 7, NeuronParameters(alpha=0.9, alpha_syn=0.3)).double()
        x = (torch.rand(20, 3, 6, dtype=torch.float64) < 0.1).double()
        lif = LIF(0.9).double()
        xc = torch.randn(20, 3, 7, dtype=torch.float64) + 0.3
        numba = [layer(x), lif(xc)]
        events = layer.input.events(x)
        assert events is not None
        ev_args = (events, (20, 3), layer.input.weight, layer.input.bias, layer.recurrent_weight(), layer.params)
        s_numba = S.run_recurrent_events(*ev_args)[0]
        g_numba = torch.autograd.grad(s_numba.sum() + numba[0].square().sum(), list(layer.parameters()))
        monkeypatch.setattr(S, "_backend", lambda t: "triton")
        assert torch.equal(lif(xc), numba[1])
        s_triton = S.run_recurrent_events(*ev_args)[0]
        out = layer(x.requires_grad_())  # an input that needs a gradient: the dense path
        assert torch.equal(out, numba[0]) and torch.equal(s_triton, s_numba)
        g_triton = torch.autograd.grad(s_triton.sum() + out.square().sum(), list(layer.parameters()))
        for a, b in zip(g_triton, g_numba):
            torch.testing.assert_close(a, b, **_tol(torch.float64, b))
        assert calls == ["run_sequence_triton", "run_recurrent_triton", "run_recurrent_triton"], calls
        assert kernels.available()
