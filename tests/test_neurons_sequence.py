"""The compiled sequence kernels against a naive per-step loop of ``neuron_step`` (spikes identical, gradients allclose)."""
from __future__ import annotations

import pytest
import torch

from spikes import kernels
from spikes.neurons import ALIF, IF, LIF, PLIF, CubaLIF, NeuronParameters, NeuronState, neuron_step
from spikes.neurons.sequence import fast_path_unsupported, run_recurrent, run_sequence
from spikes.surrogates import KINDS, Surrogate

pytestmark = pytest.mark.skipif(not kernels.available(), reason=f"compiled kernels unavailable: {kernels.unavailable_reason()}")

CASES = {
    "lif_subtract": dict(alpha=0.9),
    "lif_zero_bias": dict(alpha=0.8, reset="zero", bias=0.05),
    "if": dict(alpha=1.0, reset="zero"),
    "cuba": dict(alpha=0.9, alpha_syn=0.7, reset="zero"),
    "alif": dict(alpha=0.95, beta=0.6, rho=0.9),
    "refractory": dict(alpha=0.9, refractory_steps=2, v_th=0.8),
    "everything": dict(alpha=0.85, alpha_syn=0.5, beta=0.3, rho=0.8, refractory_steps=1, reset="zero", bias=0.02),
}


def naive(x, p, state=None, w_rec=None, s0=None):
    """Per-step loop, as a user of ``neuron_step`` would write it."""
    out = []
    s = s0 if s0 is not None else torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        cur = x[t] if w_rec is None else x[t] + s @ w_rec.t()
        s, state = neuron_step(cur, state, p)
        out.append(s)
    return torch.stack(out), state


def _inputs(shape, dtype, scale=0.7, shift=0.25):
    x = (torch.randn(shape, dtype=dtype) * scale + shift).requires_grad_()
    return x, torch.randn(shape, dtype=dtype)


def _loss(s, state, w):
    return (s * w).sum() + state.v.square().sum() + 0.5 * state.i.sum() + 0.3 * state.a.sum()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_sequence_matches_per_step(case, dtype):
    p = NeuronParameters(**CASES[case])
    x, w = _inputs((40, 3, 5), dtype)
    s1, st1 = run_sequence(x, p)
    s2, st2 = naive(x, p)
    assert torch.equal(s1, s2), "spikes differ from the per-step path"
    assert 0.05 < float(s1.detach().mean()) < 0.9
    for a, b in zip(st1, st2):
        assert torch.equal(a, b)
    g1 = torch.autograd.grad(_loss(s1, st1, w), x)[0]
    g2 = torch.autograd.grad(_loss(s2, st2, w), x)[0]
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g1, g2, **tol)


@pytest.mark.parametrize("kind", KINDS)
def test_every_surrogate_gradient(kind):
    p = NeuronParameters(alpha=0.9, surrogate=Surrogate(kind))
    x, w = _inputs((30, 4, 6), torch.float64)
    g1 = torch.autograd.grad((run_sequence(x, p)[0] * w).sum(), x)[0]
    g2 = torch.autograd.grad((naive(x, p)[0] * w).sum(), x)[0]
    assert g1.abs().sum() > 0
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_learnable_alpha_gradient(dtype):
    alpha = torch.tensor(0.8, dtype=dtype, requires_grad=True)
    p = NeuronParameters(alpha=alpha, reset="zero", refractory_steps=1, alpha_syn=0.3)
    x, w = _inputs((30, 2, 7), dtype)
    state = NeuronState(torch.rand(2, 7, dtype=dtype), torch.zeros(2, 7, dtype=dtype), torch.zeros(2, 7, dtype=dtype),
                        torch.zeros(2, 7, dtype=torch.int32))
    s1, st1 = run_sequence(x, p, state)
    s2, st2 = naive(x, p, state)
    assert torch.equal(s1, s2)
    g1 = torch.autograd.grad(_loss(s1, st1, w), (x, alpha))
    g2 = torch.autograd.grad(_loss(s2, st2, w), (x, alpha))
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **tol)


def test_initial_state_gradient_and_continuation():
    p = NeuronParameters(alpha=0.9, alpha_syn=0.5, beta=0.4, rho=0.9)
    x, w = _inputs((20, 3, 4), torch.float64)
    v0 = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    i0 = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    a0 = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    state = NeuronState(v0, i0, a0, torch.zeros(3, 4, dtype=torch.int32))
    g1 = torch.autograd.grad(_loss(*run_sequence(x, p, state), w), (v0, i0, a0))
    g2 = torch.autograd.grad(_loss(*naive(x, p, state), w), (v0, i0, a0))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    # two halves with the state carried over = one run
    s_all, _ = run_sequence(x.detach(), p)
    s_a, st = run_sequence(x.detach()[:8], p)
    s_b, _ = run_sequence(x.detach()[8:], p, st)
    assert torch.equal(s_all, torch.cat([s_a, s_b]))


@pytest.mark.parametrize("case", ["lif_subtract", "lif_zero_bias", "cuba", "alif", "refractory", "everything"])
def test_recurrent_fused_matches_per_step(case):
    p = NeuronParameters(**CASES[case])
    x, w = _inputs((40, 5, 9), torch.float64, scale=0.5, shift=0.2)
    w_rec = (torch.randn(9, 9, dtype=torch.float64) * 0.4).requires_grad_()
    s0 = (torch.rand(5, 9) < 0.3).double().requires_grad_()
    s1, st1 = run_recurrent(x, w_rec, p, None, s0)
    s2, st2 = naive(x, p, None, w_rec, s0)
    assert torch.equal(s1, s2)
    assert 0.05 < float(s1.detach().mean()) < 0.9
    g1 = torch.autograd.grad(_loss(s1, st1, w), (x, w_rec, s0))
    g2 = torch.autograd.grad(_loss(s2, st2, w), (x, w_rec, s0))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_recurrent_float32_and_learnable_alpha():
    alpha = torch.tensor(0.9, requires_grad=True)
    p = NeuronParameters(alpha=alpha, surrogate=Surrogate("fast_sigmoid"))
    x, w = _inputs((30, 4, 8), torch.float32, scale=0.5, shift=0.2)
    w_rec = (torch.randn(8, 8) * 0.4).requires_grad_()
    s1, st1 = run_recurrent(x, w_rec, p)
    s2, st2 = naive(x, p, None, w_rec)
    assert torch.equal(s1, s2)  # (float32 summation order could flip a borderline spike; not with this seed)
    g1 = torch.autograd.grad(_loss(s1, st1, w), (x, w_rec, alpha))
    g2 = torch.autograd.grad(_loss(s2, st2, w), (x, w_rec, alpha))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_modules_forward_equals_step_loop():
    for module in (LIF(0.9), IF(), CubaLIF(), ALIF(), PLIF(0.6)):
        x = torch.randn(25, 2, 6, dtype=torch.float64) * 0.8 + 0.3
        module = module.double()
        out = module(x)
        state, steps = None, []
        for t in range(x.shape[0]):
            s, state = module.step(x[t], state)
            steps.append(s)
        assert torch.equal(out, torch.stack(steps)), type(module).__name__


def test_reference_fallback_is_explicit(monkeypatch):
    p = NeuronParameters(alpha=0.9)
    x = torch.randn(10, 2, 3) + 0.3
    assert fast_path_unsupported(x, p) is None
    assert "float32/float64" in fast_path_unsupported(x.half(), p)
    monkeypatch.setenv("SPIKES_REFERENCE", "1")
    assert fast_path_unsupported(x, p) == "SPIKES_REFERENCE is set"
    s_ref, _ = run_sequence(x, p)
    monkeypatch.delenv("SPIKES_REFERENCE")
    assert torch.equal(run_sequence(x, p)[0], s_ref)


def test_bad_shapes_are_named():
    p = NeuronParameters()
    with pytest.raises(ValueError, match="w_rec must be"):
        run_recurrent(torch.zeros(3, 2, 4), torch.zeros(4, 5), p)
    with pytest.raises(ValueError, match="state.v"):
        run_sequence(torch.zeros(3, 2, 4), p, NeuronState(*(torch.zeros(5) for _ in range(4))))


@pytest.mark.parametrize("case", ["lif_subtract", "everything"])
def test_channels_last_layout_is_kept_and_equal(case):
    """A (T, B, C, H, W) input stored channels-last runs without a copy: same spikes, state and gradients, same strides."""
    p = NeuronParameters(**CASES[case])
    x, w = _inputs((12, 2, 3, 4, 5), torch.float64)
    x_cl = x.detach().permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3).requires_grad_()
    v0 = torch.rand(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    state = NeuronState(v0, torch.zeros_like(v0), torch.zeros_like(v0), torch.zeros(2, 3, 4, 5, dtype=torch.int32))
    s1, st1 = run_sequence(x, p, state)
    s2, st2 = run_sequence(x_cl, p, state)
    assert s2.stride() == x_cl.stride()
    assert torch.equal(s1, s2)
    for a, b in zip(st1, st2):
        assert torch.equal(a, b)
    g1 = torch.autograd.grad(_loss(s1, st1, w), (x, v0))
    g2 = torch.autograd.grad(_loss(s2, st2, w), (x_cl, v0))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
