"""Rules without weight transport (fa, ss, kp, wm, ia, sa, dfa): backward passes against hand computations,
backprop recovered with B = W, the B updates against closed forms / autograd, and a trainer run that logs the
angles and resumes exactly."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikes.layers import EventConv2d, EventLinear, RecurrentLIF, TimeDistributed
from spikes.layers.feedback import FeedbackHooks, quiet_first_layer, synaptic_layers
from spikes.learning.rule import RULES, Batch, Objective
from spikes.training import load_checkpoint, train
from spikes.training.config import resolve_config

REPO = Path(__file__).resolve().parents[1]
B_RULES = ["fa", "ss", "kp", "wm", "ia", "sa"]


class MSE(Objective):
    def loss(self, output, batch):
        return ((output - batch.y) ** 2).sum()

    def metric_sums(self, output, batch):
        return {}


def _rule(name: str, model: nn.Module, lr: float = 0.1, **options):
    cls = RULES[name]
    rule = cls(cls.Options(**options))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    rule.check(model, MSE())
    rule.setup(model, opt, seed=3)
    return rule, opt


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()


@pytest.mark.parametrize("name", B_RULES)
@pytest.mark.parametrize("conv", [False, True])
def test_backward_sends_dy_dot_B(name, conv):
    """dx of the layer = dy . B (linear) or the transposed convolution of dy with B (conv)."""
    layer = nn.Conv2d(2, 3, 3, stride=2, padding=1).double() if conv else nn.Linear(4, 3).double()
    model = nn.Sequential(layer)
    rule, _ = _rule(name, model)
    b = rule.feedback["0"]
    assert b.shape == layer.weight.shape and not torch.equal(b, layer.weight)
    x = torch.randn(6, 2, 7, 7, dtype=torch.float64) if conv else torch.randn(6, 4, dtype=torch.float64)
    x.requires_grad_(True)
    y = model(x)
    dy = torch.randn_like(y)
    rule.hooks.enabled = True
    y.backward(dy)
    if conv:
        ref = torch.nn.grad.conv2d_input(x.shape, b, dy, stride=2, padding=1)
    else:
        ref = dy @ b
    torch.testing.assert_close(x.grad, ref)
    true_dw = torch.autograd.grad(model(x), layer.weight, dy)[0]       # dW stays autograd's
    torch.testing.assert_close(layer.weight.grad, true_dw)


def _event_net() -> nn.Module:
    """Event conv (sparse input: its custom Function) -> conv -> flatten -> event linear -> linear, over time."""
    return nn.Sequential(TimeDistributed(EventConv2d(2, 3, 3, padding=1)), nn.Tanh(),
                         TimeDistributed(nn.Conv2d(3, 2, 3, stride=2, dilation=1)), nn.Tanh(),
                         TimeDistributed(nn.Flatten()), TimeDistributed(EventLinear(2 * 3 * 3, 5)), nn.Tanh(),
                         TimeDistributed(nn.Linear(5, 3))).double()


def test_tied_feedback_is_backprop():
    """B = W (transport) through the hooks gives autograd's gradients, event layers' custom Functions included."""
    torch.manual_seed(1)
    model = _event_net()
    x = (torch.rand(3, 4, 2, 8, 8) < 0.1).double()           # sparse: EventConv2d runs its event kernel
    target = torch.randn(3, 4, 3, dtype=torch.float64)
    params = list(model.parameters())
    ref = torch.autograd.grad(((model(x) - target) ** 2).sum(), params)
    layers = synaptic_layers(model)
    hooks = FeedbackHooks(layers, {n: m.weight.detach() for n, m in layers})
    hooks.enabled = True
    with quiet_first_layer():
        got = torch.autograd.grad(((model(x) - target) ** 2).sum(), params)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    hooks.remove()


def test_event_layers_feed_back_through_B():
    """The full backward hook replaces the input gradient of EventConv2d's custom Function and of EventLinear."""
    torch.manual_seed(2)
    conv = EventConv2d(2, 3, 3, padding=1).double()
    x = (torch.rand(4, 2, 6, 6) < 0.1).double().requires_grad_(True)
    b = torch.randn_like(conv.weight)
    hooks = FeedbackHooks([("c", conv)], {"c": b})
    hooks.enabled = True
    y = conv(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    torch.testing.assert_close(x.grad, torch.nn.grad.conv2d_input(x.shape, b, dy, padding=1))
    lin = EventLinear(6, 4).double()
    x = torch.randn(3, 2, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn_like(lin.weight)
    hooks = FeedbackHooks([("l", lin)], {"l": b})
    hooks.enabled = True
    y = lin(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    torch.testing.assert_close(x.grad, dy @ b)


def test_recurrent_lif_input_projection_feeds_back_through_B():
    """RecurrentLIF behind another layer (input needs a gradient: dense projection): dx = dI . B."""
    pre, rec = TimeDistributed(nn.Linear(3, 6)), RecurrentLIF(6, 5)
    h = pre(torch.rand(4, 2, 3))
    h.retain_grad()
    b = torch.randn_like(rec.input.weight)
    hooks = FeedbackHooks([("input", rec.input)], {"input": b})
    hooks.enabled = True
    current = {}

    def keep(module, args, out):
        out.retain_grad()
        current["I"] = out

    rec.input.register_forward_hook(keep)
    rec(h).sum().backward()
    torch.testing.assert_close(h.grad, current["I"].grad @ b)


def _batch(n=8):
    g = torch.Generator().manual_seed(5)
    return Batch(torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randn(n, 3, generator=g, dtype=torch.float64))


def test_kolen_pollack_b_gets_w_update_and_decays():
    model = _mlp()
    rule, opt = _rule("kp", model, lr=0.05, alpha=0.5)
    f = 1 - 2 * 0.05 * 0.5
    for _ in range(3):
        w0 = {n: m.weight.detach().clone() for n, m in rule.layers}
        b0 = {n: rule.feedback[n].clone() for n in w0}
        rule.train_step(model, _batch(), MSE())
        for n, m in rule.layers:
            w_opt = w0[n] - 0.05 * m.weight.grad                 # SGD's step on W
            torch.testing.assert_close(m.weight.detach(), f * w_opt)
            torch.testing.assert_close(rule.feedback[n] - f * b0[n], f * (w_opt - w0[n]))   # B got W's change
            torch.testing.assert_close(m.weight.detach() - rule.feedback[n], f * (w0[n] - b0[n]))  # geometric


@pytest.mark.parametrize("magnitude", ["random", "unit"])
def test_sign_symmetry(magnitude):
    model = _mlp()
    rule, _ = _rule("ss", model, magnitude=magnitude)
    for step in range(2):
        for n, m in rule.layers:
            b = rule.feedback[n]
            assert torch.equal(torch.sign(b), torch.sign(m.weight.detach()))
            if magnitude == "unit":
                assert torch.equal(b, torch.sign(m.weight.detach()))
            else:
                fan_in = m.weight.shape[1]
                assert float(b.abs().max()) <= fan_in ** -0.5 and len(torch.unique(b.abs())) > 1
        rule.train_step(model, _batch(), MSE())


def _closed_form_grad(name: str, o, x, w, b):
    """dR/dB by hand for a linear layer (rows x, W and B (out, in))."""
    n = x.shape[0]
    y = x @ w.T
    g_decay, g_self, g_amp = 2 * b, -w, -(y.T @ x) / n
    g_null = 2 * y.T @ (y @ b) / n
    if name == "wm":
        return o.alpha * g_decay + o.beta * g_amp
    if name == "ia":
        return o.alpha * g_amp + o.beta * g_null + o.gamma * g_decay
    return o.alpha * g_decay + o.beta * g_self


@pytest.mark.parametrize("name", ["wm", "ia", "sa"])
def test_regularised_b_update(name):
    model = _mlp()
    rule, _ = _rule(name, model, lr_b=0.3)
    batch = _batch()
    b0 = rule.feedback["0"].clone()
    rule.train_step(model, batch, MSE())
    w = model[0].weight.detach()                  # W after the optimizer's step
    ref = b0 - 0.3 * _closed_form_grad(name, rule.options, batch.x, w, b0)
    torch.testing.assert_close(rule.feedback["0"], ref)


def test_information_alignment_conv_update_is_autograd_of_regulariser():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).double()
    rule, _ = _rule("ia", model, lr_b=0.2)
    x = torch.randn(5, 2, 7, 7, dtype=torch.float64)
    b0 = rule.feedback["0"].clone()
    rule.train_step(model, Batch(x, torch.randn(5, 3, dtype=torch.float64)), MSE())
    w = model[0].weight.detach()
    b = b0.clone().requires_grad_(True)
    fw, fb = F.conv2d(x, w, stride=2, padding=1), F.conv2d(x, b, stride=2, padding=1)
    amp = -(fw * fb).sum() / 5
    null = F.conv_transpose2d(fw, b, stride=2, padding=1, output_padding=0).pow(2).sum() / 5
    o = rule.options
    r = o.alpha * amp + o.beta * null + o.gamma * (w.pow(2).sum() + b.pow(2).sum())
    (g,) = torch.autograd.grad(r, b)
    torch.testing.assert_close(rule.feedback["0"], b0 - 0.2 * g)


def test_weight_mirror_noise_input_is_seeded():
    a, b = _mlp(), _mlp()
    b.load_state_dict(a.state_dict())
    ra, _ = _rule("wm", a, input_noise="normal")
    rb, _ = _rule("wm", b, input_noise="normal")
    for r, m in ((ra, a), (rb, b)):
        r.train_step(m, _batch(), MSE())
    torch.testing.assert_close(ra.feedback["0"], rb.feedback["0"])


def test_direct_feedback_signal():
    """The hidden layer's output gradient is e . D with e = dL/dy_out; its dW = (e D)^T x; the output layer's is true."""
    model = _mlp()
    rule, _ = _rule("dfa", model, lr=0.0)
    batch = _batch()
    out = rule.train_step(model, batch, MSE())
    d = rule.feedback["0"]
    assert d.shape == (3, 5) and "2" not in rule.feedback
    with torch.no_grad():
        h = torch.tanh(model[0](batch.x))
        e = 2 * (model[2](h) - batch.y)
    torch.testing.assert_close(model[0].weight.grad, (e @ d).T @ batch.x)
    torch.testing.assert_close(model[2].weight.grad, e.T @ h)
    assert out.extra["angle_grad/2"] == pytest.approx(0.0, abs=1e-5) and "angle_grad/0" in out.extra


def test_true_gradient_angle_is_backprop():
    """The logged true gradient is backprop's: with B = W every angle_grad is 0."""
    model = _mlp()
    rule, _ = _rule("fa", model, lr=0.0)
    for n, m in rule.layers:
        rule.feedback[n].copy_(m.weight.detach())
    out = rule.train_step(model, _batch(), MSE())
    for n, _ in rule.layers:
        assert out.extra[f"angle_grad/{n}"] == pytest.approx(0.0, abs=1e-5)
        assert out.extra[f"angle_wb/{n}"] == pytest.approx(0.0, abs=1e-5)


def _kp_config(**train):
    return resolve_config(None, {"model": {"kind": "mlp_snn", "width": 16}, "rule": {"name": "kp", "log_every": 1},
                                 "data": {"dataset": "synthetic", "n_time_bins": 3, "train_limit": 48, "test_limit": 16},
                                 "train": {"epochs": 2, "batch_size": 8, "threads": 1, "progress": False, **train}})


def test_spikes_train_kp_logs_angles_and_resumes_exactly(tmp_path):
    run = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "spikes.cli", "train", "--model", "mlp_snn", "--rule", "kp",
                           "--dataset", "synthetic", "--run-dir", str(run), "--epochs", "1", "--batch-size", "8",
                           "--train-limit", "16", "--test-limit", "8", "--n-time-bins", "3", "--no-progress",
                           "--set", "rule.log_every=1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for layer in ("features.1.module", "features.3.module", "head.module"):
        assert all(0.0 <= rec[f"angle_wb/{layer}"] <= 180.0 for rec in lines)
    whole = train(_kp_config(), tmp_path / "whole", log=lambda m: None)
    train(_kp_config(max_steps=7), tmp_path / "part", log=lambda m: None)          # stops mid-epoch 2
    saved = load_checkpoint(tmp_path / "part" / "checkpoint.pt")["rule"]["state"]
    assert set(saved["feedback"]) == {"features.1.module", "features.3.module", "head.module"}
    resumed = train(_kp_config(), tmp_path / "part", resume=True, log=lambda m: None)
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "part" / "checkpoint.pt")
    for k in a["weights"]:
        assert torch.equal(a["weights"][k], b["weights"][k]), k
    for k in a["rule"]["state"]["feedback"]:
        assert torch.equal(a["rule"]["state"]["feedback"][k], b["rule"]["state"]["feedback"][k]), k
    assert resumed["test_metric"] == whole["test_metric"]
    log_a = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    log_b = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    strip = lambda s: {k: v for k, v in json.loads(s).items() if k != "time_s"}  # noqa: E731
    assert [strip(s) for s in log_a] == [strip(s) for s in log_b]


def test_rule_refuses_model_without_synaptic_layers():
    with pytest.raises(ValueError, match="synaptic layers"):
        RULES["kp"]().check(nn.Sequential(nn.Tanh(), nn.PReLU()), MSE())
    with pytest.raises(ValueError, match="padding"):
        RULES["fa"]().check(nn.Sequential(nn.Conv2d(1, 1, 3, padding="same")), MSE())


def _recurrent_by_hand(x, w, b, p):
    """An independent reference of the recurrence with feedback B: the recurrent current is
    s.detach() W^T + (s B^T - s.detach() B^T): its value is s W^T, autograd sends ds = g . B and dW = g^T s."""
    from spikes.neurons.dynamics import neuron_step
    s = torch.zeros_like(x[0])
    state, out = None, []
    for x_t in x.unbind(0):
        rec = s.detach() @ w.t() + (s @ b.t() - s.detach() @ b.t())
        s, state = neuron_step(x_t + rec, state, p)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("path", ["kernel", "reference", "events"])
def test_recurrent_matrix_feeds_back_through_B(path):
    """RecurrentLIF's recurrent matrix as a synaptic layer: the backward recurrence sends g[t] . B to s[t-1] (compiled
    kernel, reference loop, and the fused event path), dW_rec stays the true one; disabled, it is backprop."""
    from spikes.layers.feedback import RecurrentSynapses, synaptic_layers
    torch.manual_seed(3)
    rec = RecurrentLIF(6, 5).double()
    with torch.no_grad():
        rec.weight_rec.mul_(4.0)
    names = [n for n, _ in synaptic_layers(nn.Sequential(rec))]
    assert names == ["0.input", "0.recurrent"]
    proxy = synaptic_layers(rec)[1][1]
    assert isinstance(proxy, RecurrentSynapses) and proxy.weight is rec.weight_rec
    assert set(rec.state_dict()) == {"input.weight", "input.bias", "weight_rec"}
    b = torch.randn(5, 5, dtype=torch.float64)
    hooks = FeedbackHooks([("input", rec.input), ("recurrent", proxy)],
                          {"input": torch.randn_like(rec.input.weight), "recurrent": b})
    if path == "events":
        x = (torch.rand(12, 3, 6) < 0.3).double()
    else:
        x = (torch.rand(12, 3, 6, dtype=torch.float64) * 2).requires_grad_(path != "events")
    dense_current = TimeDistributed(rec.input)
    if path == "reference":
        from spikes.neurons import sequence
        forward = lambda: sequence.run_recurrent_reference(dense_current(x), rec.recurrent_weight(), rec.params,  # noqa: E731
                                                           feedback=rec._feedback)[0]
    else:
        forward = lambda: rec(x)  # noqa: E731
    for enabled in (True, False):
        rec.zero_grad()
        hooks.enabled = enabled
        spikes = forward()
        g = torch.randn_like(spikes)
        (spikes * g).sum().backward()
        got = rec.weight_rec.grad.clone(), rec.input.weight.grad.clone()
        rec.zero_grad()
        w_rec = rec.weight_rec
        ref = _recurrent_by_hand(rec.input(x) if x.dim() == 3 else None, w_rec, b if enabled else w_rec.detach(),
                                 rec.params)
        assert torch.equal(ref.detach(), spikes.detach()) and spikes.sum() > 0
        (ref * g).sum().backward()
        torch.testing.assert_close(got[0], rec.weight_rec.grad)
        torch.testing.assert_close(got[1], rec.input.weight.grad)
    hooks.remove()
    assert rec.feedback_source is None


class _SumOverTime(nn.Module):
    def forward(self, x):
        return x.sum(0)


@pytest.mark.parametrize("name", ["kp", "wm"])
def test_rules_train_the_recurrent_feedback(name):
    """The rules give RecurrentLIF's recurrent matrix its own B: KP's receives W_rec's change and decays; WM's
    regulariser reads the recurrent input (the spikes one step earlier) and moves B."""
    torch.manual_seed(1)
    rec = RecurrentLIF(4, 5).double()
    with torch.no_grad():
        rec.input.weight.mul_(6.0)
        rec.weight_rec.mul_(3.0)
    model = nn.Sequential(rec, TimeDistributed(nn.Linear(5, 3)), _SumOverTime()).double()
    rule, _ = _rule(name, model, lr=0.05, **({"alpha": 0.5} if name == "kp" else {"lr_b": 1.0}))
    assert [n for n, _ in rule.layers] == ["0.input", "0.recurrent", "1.module"]
    g = torch.Generator().manual_seed(2)
    batch = Batch(torch.rand(10, 6, 4, generator=g, dtype=torch.float64).requires_grad_(False),
                  torch.randn(6, 3, generator=g, dtype=torch.float64))
    w0, b0 = rec.weight_rec.detach().clone(), rule.feedback["0.recurrent"].clone()
    rule.train_step(model, batch, MSE())
    assert rec.weight_rec.grad is not None and float(rec.weight_rec.grad.abs().sum()) > 0
    b1 = rule.feedback["0.recurrent"]
    if name == "kp":
        f = 1 - 2 * 0.05 * 0.5
        torch.testing.assert_close(rec.weight_rec.detach() - b1, f * (w0 - b0))
    else:
        assert not torch.equal(b1, b0)


@pytest.mark.parametrize("name", ["fa", "ia"])
def test_feedback_init_weight_keeps_backprops_error_scale(name):
    """feedback_init='weight' draws B with the spread of the layer's W: through a He-initialised ReLU stack (W std
    sqrt(2 / fan_in), sqrt(6) times Kaiming-uniform's) the first layer's FA gradient keeps backprop's norm
    (autograd's, same batch), where the Kaiming-uniform B lets it shrink about sqrt(6) x 2 per layer back."""
    from spikes.models.mlp import MLP

    torch.manual_seed(0)
    x, y = torch.randn(64, 32, dtype=torch.float64), torch.randn(64, 8, dtype=torch.float64)
    norms = {}
    for init in ("kaiming", "weight"):
        torch.manual_seed(1)
        model = MLP(32, 8, width=64, depth=3).double()
        rule, _ = _rule(name, model, lr=0.0, feedback_init=init, log_every=0)
        for n, m in rule.layers:
            ratio = float(rule.feedback[n].std() / m.weight.detach().std())
            assert ratio == pytest.approx(1.0 if init == "weight" else 1 / math.sqrt(6), rel=0.1), (init, n)
        rule.train_step(model, Batch(x, y), MSE())
        fa_grad = model[0].weight.grad.norm().item()
        model.zero_grad()
        with quiet_first_layer():
            MSE().loss(model(x), Batch(x, y)).backward()
        norms[init] = fa_grad / model[0].weight.grad.norm().item()
    assert 0.5 < norms["weight"] < 2.0
    assert norms["kaiming"] < 0.1
