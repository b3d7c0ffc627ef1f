"""e-prop's hard-coded gradients vs autograd (Bellec et al. 2020: symmetric e-prop == BPTT with z[t-1]
detached in the recurrent input and in the reset), for LIF and ALIF, float64, random small nets."""
from __future__ import annotations

import pytest
import torch

from spikes.learning.eprop import EProp, EPropConfig
from spikes.learning.eprop_losses import SequenceCrossEntropy, SequenceMSE
from spikes.models.rsnn import RSNN, RSNNConfig

T, B, N_IN, N_REC, N_OUT = 50, 3, 5, 8, 3


def _net(n_adaptive: int, seed: int = 1, n_ref: int = 2) -> RSNN:
    cfg = RSNNConfig(n_in=N_IN, n_rec=N_REC, n_out=N_OUT, n_adaptive=n_adaptive, tau_m=20.0, tau_a=40.0,
                     tau_out=15.0, v_th=0.6, n_ref=n_ref)
    net = RSNN(cfg, seed=seed, dtype=torch.float64)
    with torch.no_grad():  # enough drive for a few spikes per neuron
        net.w_in.mul_(3.0)
        net.w_rec.mul_(2.0)
    return net


def _inputs(seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N_IN, generator=g, dtype=torch.float64) < 0.3).double()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("n_adaptive", [0, 4, N_REC], ids=["LIF", "LIF+ALIF", "ALIF"])
@pytest.mark.parametrize("loss_kind", ["mse", "ce"])
def test_symmetric_eprop_equals_autograd_with_stop_gradient(n_adaptive, loss_kind):
    net, x = _net(n_adaptive), _inputs()
    g = torch.Generator().manual_seed(3)
    if loss_kind == "mse":
        loss = SequenceMSE(torch.randn(T, B, N_OUT, generator=g, dtype=torch.float64))
    else:
        mask = torch.zeros(T)
        mask[T // 2:] = 1.0
        loss = SequenceCrossEntropy(torch.tensor([0, 2, 1]), N_OUT, T, mask, dtype=torch.float64)
    c_reg, f_target = 0.5, 10.0
    y, z = net(x, stop_gradient=True)
    assert 0.02 < float(z.detach().mean()) < 0.4, "the test net should spike, but not saturate"
    reg = c_reg * ((z.mean(dim=(0, 1)) - f_target / 1000.0) ** 2).sum()
    reference = torch.autograd.grad(loss.total(y) + reg, list(net.parameters()))

    learner = EProp(net, EPropConfig(feedback="symmetric", c_reg=c_reg, f_target=f_target))
    y_online = learner.run(x, loss, apply=False)
    assert torch.equal(y_online, y.detach())
    assert learner.loss_sum == pytest.approx(float(loss.total(y).detach()), rel=1e-12)
    grads = learner.gradients()
    for (name, _), ref in zip(net.named_parameters(), reference):
        assert ref.norm() > 0
        assert _rel(grads[name], ref) < 1e-5, name
    assert torch.all(grads["w_rec"].diagonal() == 0)


def test_full_bptt_differs_from_eprop():
    """Sanity of the reference: without the stop-gradient the recurrent gradient is a different one."""
    net, x = _net(4), _inputs()
    loss = SequenceMSE(torch.randn(T, B, N_OUT, dtype=torch.float64))
    full = torch.autograd.grad(loss.total(net(x)[0]), [net.w_rec])[0]
    learner = EProp(net)
    learner.run(x, loss, apply=False)
    assert _rel(learner.gradients()["w_rec"], full) > 1e-3


@pytest.mark.parametrize("n_adaptive", [0, 4])
def test_random_feedback_equals_autograd_through_feedback_readout(n_adaptive):
    """Random feedback B: gradient = autograd where dE/dz flows through a readout with weights B^T."""
    net, x = _net(n_adaptive), _inputs()
    loss = SequenceMSE(torch.randn(T, B, N_OUT, dtype=torch.float64))
    learner = EProp(net, EPropConfig(feedback="random", seed=7))
    fb = learner.feedback_matrix()
    assert fb.shape == (N_REC, N_OUT)
    _, z = net(x, stop_gradient=True)
    ys, y, yb = [], torch.zeros(B, N_OUT, dtype=torch.float64), torch.zeros(B, N_OUT, dtype=torch.float64)
    for t in range(T):  # value of the true readout, gradient of the feedback readout
        y = net.cfg.kappa * y + z[t].detach() @ net.w_out.detach().t() + net.b_out.detach()
        yb = net.cfg.kappa * yb + z[t] @ fb
        ys.append(y + yb - yb.detach())
    reference = torch.autograd.grad(loss.total(torch.stack(ys)), [net.w_in, net.w_rec])
    learner.run(x, loss, apply=False)
    grads = learner.gradients()
    assert _rel(grads["w_in"], reference[0]) < 1e-5
    assert _rel(grads["w_rec"], reference[1]) < 1e-5


def test_update_every_k_steps_uses_the_prefix_gradient():
    """With SGD and an update after K steps, the weights move by -lr x (autograd gradient of the first K steps)."""
    K, lr = 20, 0.1
    net, x = _net(4), _inputs()
    loss = SequenceMSE(torch.randn(T, B, N_OUT, dtype=torch.float64))
    y, _ = net(x[:K], stop_gradient=True)
    prefix = sum(loss.step(t, y[t])[0] for t in range(K))
    reference = torch.autograd.grad(prefix, list(net.parameters()))
    before = [p.detach().clone() for p in net.parameters()]
    learner = EProp(net, lr=lr)
    learner.begin(B)
    for t in range(K):
        learner.step(x[t], loss)
    learner.apply()
    for p, p0, ref in zip(net.parameters(), before, reference):
        assert _rel((p0 - p.detach()) / lr, ref) < 1e-5
    # the sequence goes on with the new weights and the same traces
    out = learner.step(x[K], loss)
    assert out.z.shape == (B, N_REC) and learner.t == K + 1


def test_adaptive_feedback_follows_readout_update_kolen_pollack():
    """Kolen-Pollack: B and Wout^T get the same update and both decay, so B - Wout^T shrinks by (1 - lr wd)."""
    lr, wd = 0.05, 2.0
    net, x = _net(4), _inputs()
    loss = SequenceMSE(torch.randn(T, B, N_OUT, dtype=torch.float64))
    learner = EProp(net, EPropConfig(feedback="adaptive", weight_decay=wd), lr=lr)
    gap0 = learner.feedback_matrix() - net.w_out.detach().t()
    learner.run(x, loss)
    gap1 = learner.feedback_matrix() - net.w_out.detach().t()
    assert torch.allclose(gap1, (1 - lr * wd) * gap0, rtol=0, atol=1e-12)


def test_traces_do_not_grow_with_sequence_length():
    sizes = []
    for length in (5, 200):
        net = _net(4)
        learner = EProp(net)
        learner.begin(B)
        for t in range(length):
            learner.step(torch.ones(B, N_IN, dtype=torch.float64) * (t % 3 == 0))
        sizes.append(sum(v.numel() for v in vars(learner).values() if isinstance(v, torch.Tensor)))
    assert sizes[0] == sizes[1]
