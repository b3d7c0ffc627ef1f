"""Spike-and-slab layers, the spike_slab_rnn kind, its tasks and ``spikes analyse pruning`` (issue 19 part A)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats
import torch

from spikes.cli import main as cli_main
from spikes.datasets.tabular import load_split
from spikes.datasets.tasks.multisensory import (CHANNELS, MODALITIES, MultisensoryConfig, decision_mask, label_of,
                                                multisensory_split, trials)
from spikes.datasets.tasks.sequential_digits import sequential_digits_split
from spikes.layers.spike_slab import (SpikeSlabCellParameters, SpikeSlabLinear, SpikeSlabRecurrent, SpikeSlabState,
                                      set_mode, spike_slab_step)
from spikes.learning.rule import Batch
from spikes.models.registry import kind_of
from spikes.reports.spike_slab import fit_psychometric


def _layer(seed: int = 0) -> SpikeSlabLinear:
    torch.manual_seed(seed)
    layer = SpikeSlabLinear(6, 3, bias=True, m_std=1.0, pi_init=0.3, xi_range=(0.2, 1.0))
    with torch.no_grad():                      # a spread of pi and a bias, so every term of the moments matters
        layer.pi_logit.add_(torch.randn_like(layer.pi_logit))
        layer.bias.copy_(torch.tensor([0.5, -1.0, 0.0]))
    return layer


def test_mean_field_moments_match_monte_carlo_of_concrete_weights():
    layer = _layer()
    x = torch.tensor([[0.5, -1.0, 2.0, 0.0, 1.5, -0.3]])
    mean, var = (t.detach().double()[0] for t in layer.moments(x))
    # independent reference: draw concrete weights straight from (pi, m, xi) with numpy
    rng = np.random.default_rng(1)
    pi, m, xi = (t.detach().double().numpy() for t in (layer.pi, layer.m, layer.xi))
    n = 40000
    w = np.where(rng.random((n, *m.shape)) < pi, 0.0, m + np.sqrt(xi) * rng.standard_normal((n, *m.shape)))
    u = w @ x.double().numpy()[0] + layer.bias.detach().double().numpy()          # (n, 3)
    mc_mean, mc_var = u.mean(0), u.var(0, ddof=1)
    se_mean = np.sqrt(mc_var / n)
    se_var = np.sqrt((((u - mc_mean) ** 4).mean(0) - mc_var ** 2) / n)
    assert np.all(np.abs(mean.numpy() - mc_mean) < 4 * se_mean), (mean, mc_mean, se_mean)
    assert np.all(np.abs(var.numpy() - mc_var) < 4 * se_var), (var, mc_var, se_var)
    # and the training forward draws u from that Gaussian (local reparameterisation)
    layer.train()
    draws = torch.stack([layer(x)[0] for _ in range(4000)]).detach().double()
    assert torch.all((draws.mean(0) - mean).abs() < 4 * (var / 4000).sqrt())
    assert torch.all((draws.var(0) - var).abs() < 4 * var * math.sqrt(2 / 3999))


def test_eval_mean_field_is_the_mean_and_sampled_mode_is_a_fixed_network():
    layer = _layer()
    x = torch.randn(4, 6)
    layer.eval()
    assert torch.allclose(layer(x), layer.moments(x)[0])
    layer.resample(torch.Generator().manual_seed(3))
    w = layer.sampled_weight.clone()
    assert torch.allclose(layer(x), x @ w.T + layer.bias)
    assert torch.equal(layer(x), layer(x))
    set_mode(layer, "mean_field")
    assert layer.mode == "mean_field"


def test_sampled_weights_follow_the_spike_and_slab_distribution():
    torch.manual_seed(0)
    layer = SpikeSlabLinear(400, 300, pi_init=0.35, m_std=0.0, xi_range=(0.5, 0.5))
    with torch.no_grad():
        layer.m.fill_(1.5)
    w = layer.sample_weights(torch.Generator().manual_seed(0))
    n = w.numel()
    zeros = float((w == 0).double().mean())
    pi = float(layer.pi.detach().mean())
    assert abs(zeros - pi) < 4 * math.sqrt(pi * (1 - pi) / n)
    slab = w[w != 0].double()
    xi = float(layer.xi.detach().mean())                                 # 0.5 / 400 (xi scaled by the fan-in)
    assert abs(xi - 0.5 / 400) < 1e-8
    assert abs(float(slab.mean()) - 1.5) < 4 * math.sqrt(xi / slab.numel())
    assert abs(float(slab.var()) - xi) < 4 * xi * math.sqrt(2 / slab.numel())


def test_constraints_hold_after_training_steps_and_pruning():
    layer = _layer()
    opt = torch.optim.Adam(layer.parameters(), lr=2.0)          # steps that push the raw values far out
    for k in range(60):
        x = torch.randn(8, 6)
        push = 1.0 if k < 30 else -1.0                          # pi and xi towards both ends of their ranges
        loss = (layer(x) - 3.0).pow(2).mean() + push * (layer.pi.sum() + layer.xi.sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.all((layer.pi >= 0) & (layer.pi <= 1)) and torch.all(layer.xi > 0)
        assert torch.isfinite(layer.weight_moments()[1]).all()
    with torch.no_grad():
        layer.pi_logit[0, :3] = 10.0
    pruned = layer.prune(0.9)
    assert pruned >= 3 and torch.all(layer.pi[0, :3] == 1.0)
    assert torch.all(layer.sample_weights()[layer.keep == 0] == 0)
    mu, var = layer.weight_moments()
    assert torch.all(mu[layer.keep == 0] == 0) and torch.all(var[layer.keep == 0] == 0)


def test_rate_step_by_hand_in_sampled_mode():
    torch.manual_seed(0)
    cell = SpikeSlabCellParameters(neuron="rate", tau_m=2.0)
    rnn = SpikeSlabRecurrent(3, 4, cell)
    rnn.eval()
    set_mode(rnn, "sampled", torch.Generator().manual_seed(0))
    x, h, r = torch.randn(2, 3), torch.randn(2, 4), torch.rand(2, 4)
    out, state = spike_slab_step(x, SpikeSlabState(h, r), rnn.input, rnn.recurrent, cell)
    u = x @ rnn.input.sampled_weight.T + rnn.input.bias + r @ rnn.recurrent.sampled_weight.T
    h_new = h + (u - h) / 2.0
    assert torch.allclose(state.h, h_new, atol=1e-6) and torch.allclose(out, torch.relu(h_new), atol=1e-6)


def test_lif_variant_spikes_and_passes_gradients_to_every_parameter():
    kind = kind_of("spike_slab_rnn")
    model = kind.construct({"n_in": 8, "n_out": 10, "hidden": 16, "neuron": "lif", "tau_m": 4.0, "tau_out": 4.0,
                            "repeat": 3, "input_gain": 4.0, "rec_gain": 1.0, "pi_init": 0.05, "xi_max": 0.1,
                            "v_th": 1.0, "seed": 0})
    x = torch.rand(8, 5, 8)
    spikes = model.rnn(x.repeat_interleave(3, 0))
    assert set(torch.unique(spikes).tolist()) <= {0.0, 1.0} and spikes.sum() > 0
    objective = kind.objective({"repeat": 3, "sparsity": 0.1}, 0.0)
    batch = Batch(x, torch.randint(0, 10, (5,)))
    model.train()
    objective.loss(objective.forward(model, batch), batch).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_multisensory_generator_shapes_seeding_and_label_rule():
    c = MultisensoryConfig()
    x, y, modality, rate = multisensory_split("train", seed=3, n=300)
    assert x.shape == (300, c.T, len(CHANNELS)) == (300, 70, 5) and y.shape == (300,)
    x2, y2, _, _ = multisensory_split("train", seed=3, n=300)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, multisensory_split("train", seed=4, n=300)[0])
    assert np.array_equal(y, (rate > 12.5).astype(np.int64))
    assert label_of(np.array([9.0, 12.0, 13.0, 16.0]), 12.5).tolist() == [0, 0, 1, 1]
    # by hand: the cue is on for fixation + stimulus (5 + 50 steps), the modality not shown is silent
    assert np.all(x[:, :55, 4] == 1) and np.all(x[:, 55:, 4] == 0)
    assert np.all(x[modality == 0][:, :, 2:4] == 0) and np.all(x[modality == 1][:, :, 0:2] == 0)
    assert np.all(x[:, :5, :4] == 0) and np.all(x[:, 55:, :4] == 0)
    assert decision_mask(c).tolist() == [0.0] * 55 + [1.0] * 15
    # event probability per step f dt (+ channel) and (f_min + f_max - f) dt (- channel), against the binomial
    xs, _ = trials(np.full(2000, 2), np.full(2000, 11.0), seed=0)
    for ch, f in ((0, 11.0), (1, 14.0), (2, 11.0), (3, 14.0)):
        k, n, p = xs[:, 5:55, ch].sum(), 2000 * 50, f * 0.02
        assert abs(k / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    # the test grid: every modality and rate, 50 trials each
    _, yt, mt, rt = multisensory_split("test", seed=0)
    assert len(yt) == 3 * 8 * 50 and all(np.sum((mt == m) & (rt == f)) == 50 for m in range(3) for f in c.rates)
    assert len(MODALITIES) == 3


def test_sequential_digits_are_the_digit_rows():
    x, y = sequential_digits_split("test", seed=0)
    s = load_split("digits", seed=0)
    assert x.shape == (len(s.y_test), 8, 8) and x.dtype == np.float32
    assert np.allclose(x[:, 2], s.x_test[:, 16:24]) and np.array_equal(y, s.y_test)


def test_psychometric_fit_recovers_a_known_curve():
    rates = np.arange(9.0, 17.0)
    fit = fit_psychometric(rates, scipy.stats.norm.cdf((rates - 12.3) / 1.7))
    assert abs(fit["mu"] - 12.3) < 1e-3 and abs(fit["threshold"] - 1.7) < 1e-3
    assert abs(fit["slope"] - 1 / (1.7 * math.sqrt(2 * math.pi))) < 1e-4


def test_cli_train_then_analyse_pruning(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli_main(["train", "--model", "spike_slab_rnn", "--dataset", "seq-digits", "--run-dir", str(run),
                     "--epochs", "1", "--batch-size", "32", "--lr", "1e-2", "--train-limit", "128",
                     "--test-limit", "64", "--set", "model.hidden=16", "--set", "model.sparsity=0.5",
                     "--no-progress"]) == 0
    out = tmp_path / "report"
    assert cli_main(["analyse", "pruning", str(run), "--samples", "2", "--threshold", "0.5",
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mean-field test accuracy" in text and "sampled networks" in text
    report = json.loads((out / "pruning.json").read_text())
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    pi = torch.sigmoid(ckpt["weights"]["rnn.recurrent.pi_logit"])
    assert report["layers"]["rnn.recurrent"]["prunable"] == int((pi >= 0.5).sum())
    assert report["layers"]["rnn.recurrent"]["connections"] == 16 * 16
    assert len(report["sampled"]["accuracies"]) == 2 and 0 <= report["pruned_accuracy"] <= 1
    assert cli_main(["analyse", "pruning", str(tmp_path / "missing")]) == 2
