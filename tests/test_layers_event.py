"""EventLinear against nn.Linear, RecurrentLIF against a per-step loop written with nn.Linear and neuron_step."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikes.layers import EventLinear, RecurrentLIF, TimeDistributed
from spikes.neurons import NeuronParameters, neuron_step


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
