"""EventLinear against nn.Linear, EventConv2d against F.conv2d, RecurrentLIF against a per-step loop written with
nn.Linear and neuron_step."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikes import kernels
from spikes.layers import EventConv2d, EventLinear, RecurrentLIF, TimeDistributed
from spikes.neurons import LIF, NeuronParameters, neuron_step


def _pair(n_in, n_out, dtype, bias=True):
    layer = EventLinear(n_in, n_out, bias=bias, dtype=dtype)
    ref = nn.Linear(n_in, n_out, bias=bias, dtype=dtype)
    ref.load_state_dict(layer.state_dict())
    return layer, ref


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["binary", "graded", "dense"])
def test_event_linear_matches_linear(kind, dtype):
    layer, ref = _pair(300, 40, dtype)
    density = 0.6 if kind == "dense" else 0.03
    x = (torch.rand(20, 8, 300) < density).to(dtype)
    if kind == "graded":
        x = x * torch.randn(20, 8, 300, dtype=dtype)
    g = torch.randn(20, 8, 40, dtype=dtype)
    y, y_ref = layer(x), ref(x)
    (y * g).sum().backward()
    (y_ref * g).sum().backward()
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad, **tol)
    torch.testing.assert_close(layer.bias.grad, ref.bias.grad, **tol)


def test_event_linear_input_gradient_and_empty_rows():
    layer, ref = _pair(50, 7, torch.float64, bias=False)
    x = (torch.rand(6, 3, 50, dtype=torch.float64) < 0.05).double()
    x[2] = 0.0  # whole steps without any event
    torch.testing.assert_close(layer(x), ref(x))
    xg = x.clone().requires_grad_()  # needs dL/dx: dense path
    (gx,) = torch.autograd.grad(layer(xg).sum(), xg)
    xr = x.clone().requires_grad_()
    (gx_ref,) = torch.autograd.grad(ref(xr).sum(), xr)
    torch.testing.assert_close(gx, gx_ref)


def test_event_linear_bad_input_is_named():
    with pytest.raises(ValueError, match=r"EventLinear\(5, 3\).*last dimension must be 5"):
        EventLinear(5, 3)(torch.zeros(2, 4))


@pytest.mark.parametrize("zero_diagonal", [False, True])
def test_recurrent_layer_matches_per_step_loop(zero_diagonal):
    torch.manual_seed(3)
    p = NeuronParameters(alpha=0.9, beta=0.2, rho=0.9)
    layer = RecurrentLIF(12, 16, p, zero_diagonal=zero_diagonal).double()
    with torch.no_grad():
        layer.input.weight.mul_(3.0)
    x = (torch.rand(60, 4, 12) < 0.2).double()
    out = layer(x)
    loss_w = torch.randn_like(out)
    grads = torch.autograd.grad((out * loss_w).sum(), [layer.input.weight, layer.input.bias, layer.weight_rec])

    w_in = layer.input.weight.detach().clone().requires_grad_()
    b_in = layer.input.bias.detach().clone().requires_grad_()
    w_rec = layer.weight_rec.detach().clone().requires_grad_()
    mask = 1.0 - torch.eye(16, dtype=torch.float64) if zero_diagonal else torch.ones(16, 16, dtype=torch.float64)
    state, s, ref = None, torch.zeros(4, 16, dtype=torch.float64), []
    for x_t in x.unbind(0):
        s, state = neuron_step(x_t @ w_in.t() + b_in + s @ (w_rec * mask).t(), state, p)
        ref.append(s)
    ref = torch.stack(ref)
    assert torch.equal(out, ref)
    assert 0.02 < float(out.detach().mean()) < 0.8
    ref_grads = torch.autograd.grad((ref * loss_w).sum(), [w_in, b_in, w_rec])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    if zero_diagonal:
        assert torch.all(grads[2].diagonal() == 0)


def test_recurrent_layer_step_equals_forward_and_stateful_chunks():
    layer = RecurrentLIF(5, 6, NeuronParameters(alpha=0.8), stateful=True).double()
    with torch.no_grad():
        layer.input.weight.mul_(4.0)
    x = (torch.rand(30, 2, 5) < 0.3).double()
    with torch.no_grad():
        whole = layer(x)
        layer.reset_state()
        chunks = torch.cat([layer(x[:13]), layer(x[13:])])
        state, s, steps = None, None, []
        for x_t in x.unbind(0):
            s, state = layer.step(x_t, state, s)
            steps.append(s)
    assert whole.sum() > 0
    assert torch.equal(whole, chunks)
    assert torch.equal(whole, torch.stack(steps))


def test_time_distributed_conv_matches_per_step():
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    x = torch.rand(4, 2, 2, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(TimeDistributed(conv)(x), torch.stack([conv(x_t) for x_t in x]))


# ------------------------------------------------------------------------------------------------ EventConv2d

def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """The same (..., C, H, W) values stored channels-last."""
    n = x.dim()
    return x.permute(*range(n - 3), n - 2, n - 1, n - 3).contiguous().permute(*range(n - 3), n - 1, n - 3, n - 2)


def _conv_reference(layer: EventConv2d, x: torch.Tensor, g: torch.Tensor):
    """Output and (dL/dx, dL/dW, dL/db) of the plain dense convolution, by autograd."""
    x = x.detach().clone().requires_grad_()
    w = layer.weight.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_() if layer.bias is not None else None
    y = F.conv2d(x.reshape(-1, *x.shape[-3:]), w, b, layer.stride, layer.padding, layer.dilation)
    y = y.reshape(*x.shape[:-3], *y.shape[1:])
    grads = torch.autograd.grad((y * g).sum(), [t for t in (x, w, b) if t is not None])
    return y.detach(), grads


GEOMETRIES = {
    "3x3_pad1": dict(kernel_size=3, padding=1),
    "5x3_stride2_dil": dict(kernel_size=(5, 3), stride=(2, 1), padding=(2, 0), dilation=(1, 2)),
    "1x1": dict(kernel_size=1),
    "4x4_stride3_pad2": dict(kernel_size=4, stride=3, padding=2),
}


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_event_conv_matches_conv2d(geometry, layout, dtype):
    torch.manual_seed(1)
    layer = EventConv2d(3, 5, **GEOMETRIES[geometry], dtype=dtype)
    x = (torch.rand(4, 2, 3, 11, 9) < 0.1).to(dtype) * torch.randn(4, 2, 3, 11, 9, dtype=dtype)  # graded events
    x_in = (_channels_last(x) if layout == "channels_last" else x).requires_grad_()
    y = layer(x_in)
    y_ref, (gx_ref, gw_ref, gb_ref) = _conv_reference(layer, x, g := torch.randn_like(y))
    assert y.shape == y_ref.shape
    assert y.permute(0, 1, 3, 4, 2).is_contiguous(), "the event path returns channels-last memory"
    gx, gw, gb = torch.autograd.grad((y * g).sum(), [x_in, layer.weight, layer.bias])
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(gx, gx_ref, **tol)
    torch.testing.assert_close(gw, gw_ref, **tol)
    torch.testing.assert_close(gb, gb_ref, **tol)


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")
def test_event_conv_lif_stack_spikes_identical_to_dense():
    """Two conv + LIF layers (weights on a 1/64 grid and binary input, so every sum is exact in any order): the same
    spikes as nn.Conv2d per step, and the same gradients for both layers' weights and biases."""
    torch.manual_seed(2)
    ev = nn.Sequential(EventConv2d(2, 8, 3, padding=1), LIF(0.9), EventConv2d(8, 6, 3, padding=1), LIF(0.9))
    with torch.no_grad():
        for m in ev:
            if isinstance(m, EventConv2d):
                m.weight.copy_(torch.round(m.weight * 4 * 64) / 64)
                m.bias.copy_(torch.round(m.bias * 64) / 64)
    dense = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.Conv2d(8, 6, 3, padding=1))
    dense[0].load_state_dict(ev[0].state_dict())
    dense[1].load_state_dict(ev[2].state_dict())
    x = (torch.rand(15, 3, 2, 10, 7) < 0.08).float()
    lif = LIF(0.9)

    def per_step(x):
        s1 = lif(torch.stack([dense[0](x_t) for x_t in x]))
        return s1, lif(torch.stack([dense[1](s_t) for s_t in s1]))

    s1_ref, s2_ref = per_step(x)
    s1 = ev[1](ev[0](x))
    s2 = ev[3](ev[2](s1))
    assert not s1.is_contiguous() and not s2.is_contiguous(), "both layers took the event path (channels-last)"
    assert torch.equal(s1, s1_ref) and torch.equal(s2, s2_ref)
    assert 0.01 < float(s1.detach().mean()) < 0.15 and 0.01 < float(s2.detach().mean()) < 0.5
    w = torch.randn_like(s2)
    params = [ev[0].weight, ev[0].bias, ev[2].weight, ev[2].bias]
    grads = torch.autograd.grad((s2 * w).sum(), params)
    ref = torch.autograd.grad((s2_ref * w).sum(), [dense[0].weight, dense[0].bias, dense[1].weight, dense[1].bias])
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")
def test_event_conv_edge_cases():
    torch.manual_seed(3)
    layer = EventConv2d(3, 4, 3, padding=1).double()
    # all-zero input: output is the bias, dL/dW = 0, dL/db = the summed output gradient
    x = torch.zeros(5, 1, 3, 7, 5, dtype=torch.float64)
    y = layer(x)
    torch.testing.assert_close(y, layer.bias.detach().view(1, 1, 4, 1, 1).expand_as(y))
    g = torch.randn_like(y)
    gw, gb = torch.autograd.grad((y * g).sum(), [layer.weight, layer.bias])
    assert torch.equal(gw, torch.zeros_like(gw))
    torch.testing.assert_close(gb, g.sum((0, 1, 3, 4)))
    # dense input falls back to F.conv2d (NCHW output), values as the reference
    x = torch.rand(2, 3, 3, 6, 6, dtype=torch.float64)
    y = layer(x)
    assert y.is_contiguous()
    torch.testing.assert_close(y, _conv_reference(layer, x, torch.zeros(1))[0])
    # a single image without a time dimension, odd sizes, no bias
    layer = EventConv2d(1, 3, (2, 3), bias=False, max_density=1.0).double()
    x = (torch.rand(1, 1, 5, 4, dtype=torch.float64) < 0.2).double()
    y = layer(x)
    assert not y.is_contiguous()
    y_ref, (gw_ref,) = _conv_reference(layer, x, g := torch.randn_like(y))[0], _conv_reference(layer, x, g)[1][1:]
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(torch.autograd.grad((y * g).sum(), layer.weight)[0], gw_ref)


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")
def test_event_conv_deterministic_and_reference_fallback(monkeypatch):
    torch.manual_seed(4)
    layer = EventConv2d(4, 6, 3, padding=1)
    x = (torch.rand(8, 4, 4, 12, 12) < 0.05).float()

    def run():
        y = layer(x)
        return (y,) + torch.autograd.grad((y * y).sum(), [layer.weight, layer.bias])

    first, second = run(), run()
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    monkeypatch.setenv("SPIKES_REFERENCE", "1")  # no compiled kernels: F.conv2d
    for a, b in zip(first, run()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_event_conv_bad_input_is_named():
    layer = EventConv2d(2, 3, 3)
    with pytest.raises(ValueError, match=r"EventConv2d\(2, 3\).*expected \(\.\.\., 2, H, W\)"):
        layer(torch.zeros(4, 3, 5, 5))
    with pytest.raises(ValueError, match=r"EventConv2d\(2, 3\)"):
        layer(torch.zeros(2, 5, 5))
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        layer(torch.zeros(1, 2, 2, 5))
    with pytest.raises(ValueError, match="EventConv2d padding"):
        EventConv2d(2, 3, 3, padding="same")
    with pytest.raises(ValueError, match="EventConv2d max_density"):
        EventConv2d(2, 3, 3, max_density=1.5)


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("params", [dict(alpha=0.9), dict(alpha=0.85, alpha_syn=0.5, beta=0.3, rho=0.8, reset="zero")])
def test_recurrent_layer_sparse_input_fused_projection(params, dtype):
    """Sparse input: the projection is summed inside the recurrent kernel; spikes as the per-step loop and the
    gradients of W_in, b_in and W_rec as autograd's."""
    torch.manual_seed(5)
    p = NeuronParameters(**params)
    layer = RecurrentLIF(30, 12, p).to(dtype)
    with torch.no_grad():
        layer.input.weight.mul_(6.0)
    x = (torch.rand(80, 3, 30) < 0.05).to(dtype) * (1 + torch.rand(80, 3, 30, dtype=dtype))  # graded events
    x[10] = 0.0
    assert layer.input.events(x) is not None, "this input takes the fused path"
    out = layer(x)
    loss_w = torch.randn_like(out)
    params_ = [layer.input.weight, layer.input.bias, layer.weight_rec]
    grads = torch.autograd.grad((out * loss_w).sum(), params_)
    w_in, b_in, w_rec = (t.detach().clone().requires_grad_() for t in params_)
    state, s, ref = None, torch.zeros(3, 12, dtype=dtype), []
    for x_t in x.unbind(0):
        s, state = neuron_step(x_t @ w_in.t() + b_in + s @ w_rec.t(), state, p)
        ref.append(s)
    ref = torch.stack(ref)
    assert torch.equal(out, ref)  # (float32: a borderline spike could flip with another summation order; not here)
    assert 0.02 < float(out.detach().mean()) < 0.6
    ref_grads = torch.autograd.grad((ref * loss_w).sum(), [w_in, b_in, w_rec])
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")
def test_recurrent_layer_fused_deterministic_and_bias_free():
    torch.manual_seed(6)
    layer = RecurrentLIF(20, 9, NeuronParameters(alpha=0.9), bias=False)
    with torch.no_grad():
        layer.input.weight.mul_(6.0)
    x = (torch.rand(50, 5, 20) < 0.05).float()

    def run():
        out = layer(x)
        return (out,) + torch.autograd.grad((out * torch.linspace(-1, 1, 9)).sum(), [layer.input.weight, layer.weight_rec])

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)
    assert torch.equal(layer(torch.zeros(4, 2, 20)), torch.zeros(4, 2, 9))
    layer.stateful = True  # the fused path carries state and last spikes across chunks
    with torch.no_grad():
        whole = layer(x)
        layer.reset_state()
        chunks = torch.cat([layer(x[:17]), layer(x[17:])])
    assert whole.sum() > 0 and torch.equal(whole, chunks)


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels unavailable")
@pytest.mark.parametrize("kernel", [2, (3, 2)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_time_distributed_avg_pool_compiled_matches_torch(kernel, dtype):
    """Channels-last input takes the compiled pooling: output and input gradient as F.avg_pool2d's autograd,
    including the rows and columns an odd size leaves outside every window."""
    pool = TimeDistributed(nn.AvgPool2d(kernel))
    x = torch.rand(3, 2, 5, 7, 9, dtype=dtype)
    x_cl = _channels_last(x).requires_grad_()
    y = pool(x_cl)
    names = {type(f).__name__ for f, _ in y.grad_fn.next_functions if f is not None} | {type(y.grad_fn).__name__}
    assert "_AvgPoolFunctionBackward" in names, f"compiled path expected, got {names}"
    assert y.is_contiguous(), "compiled path: contiguous output (flattening it needs no copy)"
    xr = x.clone().requires_grad_()
    y_ref = F.avg_pool2d(xr.reshape(6, 5, 7, 9), kernel).reshape(3, 2, *y.shape[2:])
    g = torch.randn_like(y_ref)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(y, y_ref, **tol)
    gx, = torch.autograd.grad((y * g).sum(), x_cl, retain_graph=True)
    gx_ref, = torch.autograd.grad((y_ref * g).sum(), xr)
    torch.testing.assert_close(gx, gx_ref, **tol)
    g_cl = g.reshape(6, *g.shape[2:]).contiguous(memory_format=torch.channels_last).reshape(g.shape)
    gx_cl, = torch.autograd.grad(y, x_cl, g_cl)          # a gradient arriving in another layout: same result
    torch.testing.assert_close(gx_cl, gx_ref, **tol)
    if kernel == 2:  # H = 7: row 6 is in no window
        assert torch.equal(gx[..., 6, :], torch.zeros_like(gx[..., 6, :]))
    # overlapping windows, padding or contiguous input: torch's own pooling
    for module, inp in ((nn.AvgPool2d(3, stride=1), x_cl), (nn.AvgPool2d(2, padding=1), x_cl), (nn.AvgPool2d(2), x)):
        torch.testing.assert_close(TimeDistributed(module)(inp), torch.stack([module(x_t) for x_t in x]), **tol)
