"""Issue 18: BTSP with dendritic gating on E/I networks, reward-modulated synaptic fluctuations on CTRNNs and LIF
populations. The rules' invariants exactly (Dale signs, bounds, only plateau units change, zero reward leaves the
centres), their equations against hand computations, and the trainer's exact resume."""
from __future__ import annotations

import pytest
import torch

from spikes.datasets.tasks.spiral import spiral_split
from spikes.learning.btsp import BTSP, btsp_delta, q_dep, select_plateaus
from spikes.learning.reward_fluctuation import RewardFluctuation, RunningReward, reward_update
from spikes.learning.rule import Batch
from spikes.models.ctrnn import CTRNN, LIFPopulation, OscillationObjective
from spikes.models.ei_network import EINetwork, RateTargetObjective
from spikes.training import load_checkpoint, train
from spikes.training.config import resolve_config


def _net(**kw) -> EINetwork:
    return EINetwork(6, 3, hidden=(12, 8), **{"seed": 1, "input_gain": 3.0, "connectivity": 0.5, **kw})


def _batch(n: int = 4, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.rand(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g))


def _rule(**options) -> BTSP:
    rule = BTSP(BTSP.Options(**options))
    return rule


# ------------------------------------------------------------------------------------------------------ BTSP
def test_btsp_delta_matches_a_hand_loop():
    g = torch.Generator().manual_seed(3)
    w, et, p = torch.rand(4, 5, generator=g), torch.rand(3, 5, generator=g), torch.rand(3, 4, generator=g) * 2 - 1
    et[0, 1] = 0.005                                                  # below the depression threshold
    w_max, dep, th, width = 0.8, 0.7, 0.01, 0.02
    ref = torch.zeros_like(w)
    for b in range(3):
        for j in range(4):
            for i in range(5):
                s = min(max((float(et[b, i]) - th) / width, 0.0), 1.0)
                q = s * s * (3 - 2 * s)
                pj = float(p[b, j])
                if pj > 0:
                    ref[j, i] += pj * ((w_max - w[j, i]) * et[b, i] - dep * w[j, i] * q)
                else:
                    ref[j, i] += pj * et[b, i]
    torch.testing.assert_close(btsp_delta(w, et, p, w_max, dep, th, width), ref)
    assert float(q_dep(torch.tensor(0.005), th, width)) == 0.0 and float(q_dep(torch.tensor(0.5), th, width)) == 1.0


def test_plateau_selection_by_hand():
    d = torch.tensor([[0.9, 0.2, 0.5, -0.4, -0.1, 0.0, 0.7, -0.6, 0.3, 0.1]])
    rate = torch.tensor([[1.0, 1.0, 1.0, 0.5, 0.0, 1.0, 1.0, 0.05, 1.0, 1.0]])
    p = select_plateaus(d, rate, max_pop_fraction=0.3, neg_rate_th=0.1)
    # positive: the 3 largest of the D > 0 units (0.9, 0.7, 0.5); negative: D < 0 with rate > 0.1 (unit 3 only)
    assert torch.equal(p, torch.tensor([[0.9, 0.0, 0.5, -0.4, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0]]))


def test_btsp_keeps_dale_signs_and_bounds():
    net = _net(top_down="learned", w_max=0.5, w_max_i=0.3)
    fixed = {k: v.clone() for k, v in net.named_buffers()}
    rule = _rule(lr=0.5, lr_output=0.5, lr_dendritic=2.0, lr_top_down=2.0)
    rule.setup(net, None, 0)
    for step in range(30):
        rule.train_step(net, _batch(seed=step), RateTargetObjective())
    for name, w in net.learned_weights().items():
        bound = 0.3 if name.endswith("w_ed") else 0.5
        assert float(w.detach().min()) >= 0.0 and bool(w.detach().max() <= torch.tensor(bound, dtype=w.dtype)), name      # magnitudes: signs never flip
    assert any(float(w.detach().max()) > 0 for name, w in net.learned_weights().items() if name.endswith("w_ed"))
    for k, v in net.named_buffers():                                           # fixed projections stay fixed
        assert torch.equal(v, fixed[k]), k
    for layer in net.layers:                                                   # no synapse appears
        assert torch.equal(layer.w_in.detach() * (1 - layer.mask), torch.zeros_like(layer.w_in))


@pytest.mark.parametrize("discount", [0.0, 0.3])
def test_only_units_with_a_plateau_change(discount):
    net = _net()
    rule = _rule(lr=0.1, lr_output=0.1, temporal_discount=discount, max_pop_fraction=0.25, neg_rate_th=0.05)
    rule.setup(net, None, 0)
    previous = {k: torch.zeros(layer.n_e, dtype=torch.bool) for k, layer in enumerate(net.layers)}
    for step in range(6):
        before = [layer.w_in.detach().clone() for layer in net.layers]
        rule.train_step(net, _batch(n=1, seed=step), RateTargetObjective())
        for k, layer in enumerate(net.layers):
            now = rule.last_plateaus[k][0] != 0
            may_change = now | previous[k] if discount else now
            changed = (layer.w_in.detach() != before[k]).any(1)
            assert not bool((changed & ~may_change).any()), (step, k)          # no plateau: unchanged, bit for bit
            previous[k] = now
    assert any(bool((rule.last_plateaus[k] != 0).any()) for k in range(2))


def test_top_layer_only_leaves_hidden_layers():
    net = _net()
    hidden = [layer.w_in.detach().clone() for layer in net.layers[:-1]]
    out = net.layers[-1].w_in.detach().clone()
    rule = _rule(layers="top")
    rule.setup(net, None, 0)
    for step in range(3):
        rule.train_step(net, _batch(seed=step), RateTargetObjective())
    assert all(torch.equal(a, layer.w_in.detach()) for a, layer in zip(hidden, net.layers[:-1]))
    assert not torch.equal(out, net.layers[-1].w_in.detach())


def test_lif_variant_rates_are_spike_counts():
    net = _net(neuron="lif", lif_steps=10)
    states = net.forward_phase(_batch().x)
    for st in states:
        counts = st.e * 10
        torch.testing.assert_close(counts, counts.round())                     # integer spike counts / steps
        assert float(st.e.detach().max()) <= 1.0
    rule = _rule()
    rule.setup(net, None, 0)
    rule.train_step(net, _batch(), RateTargetObjective())
    assert all(float(w.detach().min()) >= 0 for w in net.learned_weights().values())


def test_btsp_refuses_other_models():
    with pytest.raises(ValueError, match="E/I networks"):
        _rule().check(torch.nn.Linear(2, 2), RateTargetObjective())


def test_spiral_is_seeded_and_balanced():
    x, y = spiral_split("train", seed=4)
    x2, y2 = spiral_split("train", seed=4)
    assert torch.equal(x, x2) and torch.equal(y, y2) and x.shape == (2000, 4)
    assert torch.equal(x[:, 2:], 1 - x[:, :2])                                  # ON and OFF channels
    assert y.bincount().tolist() == [500] * 4 and float(x.min()) >= 0 and float(x.max()) <= 1
    assert not torch.equal(spiral_split("test", seed=4)[0][:10], x[:10])


# ---------------------------------------------------------------------------------------------- fluctuations
def test_zero_reward_leaves_centres():
    c, w, a = torch.randn(3, 3), torch.randn(3, 3), torch.rand(3, 3)
    new_c, new_a = reward_update(c, w, a, 0.0, 0.5, 0.5, 8.0)
    assert torch.equal(new_c, c) and torch.equal(new_a, a)
    new_c, new_a = reward_update(c, w, a, 0.2, 0.5, 0.5, 8.0, centre_bound=1.0)
    torch.testing.assert_close(new_c, (c + 0.5 * 0.2 * (w - c)).clamp(-1, 1))
    torch.testing.assert_close(new_a, (a - 0.5 * 0.2).clamp(0, 8))


def test_running_reward_by_hand():
    r = RunningReward(window=2, delay=3)
    ps = [1.0, 2.0, 0.0, 4.0, 5.0, 7.0]
    out = [r.push(p) for p in ps]
    assert out[:4] == [0.0] * 4                          # not enough history yet
    assert out[4] == (4.0 + 5.0) / 2 - (1.0 + 2.0) / 2    # last 2 minus the 2 that ended 3 steps earlier
    assert out[5] == (5.0 + 7.0) / 2 - (2.0 + 0.0) / 2


@pytest.mark.parametrize("model", ["ctrnn", "lif"])
def test_fluctuation_rule_with_zero_reward_keeps_centres(model):
    net = CTRNN(n=3, seed=2) if model == "ctrnn" else LIFPopulation(n=4, seed=2, bias_min=0.5, bias_max=1.5)
    objective = OscillationObjective(net.dt)
    rule = RewardFluctuation(RewardFluctuation.Options(reward_scale=0.0, window=1.0, delay=1.0, period_min=2.0,
                                                       period_max=3.0, flux_bias=True))
    rule.setup(net, None, 0)
    centres = {k: v.detach().clone() for k, v in net.fluctuating().items()}
    phases = {k: f["phase"].clone() for k, f in rule.flux.items()}
    x = torch.zeros(200, 1, 1, dtype=torch.float64)
    out = rule.train_step(net, Batch(x, torch.zeros(1)), objective)
    for k, v in net.fluctuating().items():
        assert torch.equal(v.detach(), centres[k]), k
        assert not torch.equal(rule.flux[k]["phase"], phases[k])               # the fluctuations did run
    assert out.output.shape == (200, 1, net.n)


def test_fluctuation_rule_moves_centres_toward_current_weights_on_reward():
    net = CTRNN(n=2, seed=5)
    rule = RewardFluctuation(RewardFluctuation.Options(window=0.5, delay=0.5, learn_rate=1.0))
    rule.setup(net, None, 0)
    before = net.weight.detach().clone()
    rule.train_step(net, Batch(torch.zeros(300, 1, 1, dtype=torch.float64), torch.zeros(1)),
                    OscillationObjective(net.dt))
    assert not torch.equal(before, net.weight.detach())


def test_oscillation_fitness_by_hand():
    o = torch.tensor([[[0.0, 1.0]], [[0.5, 1.0]], [[0.0, 0.0]]], dtype=torch.float64)       # (T=3, B=1, N=2)
    f = OscillationObjective(dt=0.5).fitness(o)
    assert float(f[0]) == pytest.approx(((0.5 + 0.0) + (0.5 + 1.0)) / 4 / 0.5)


# ------------------------------------------------------------------------------------- through the trainer
def _config(model: str, rule: str, dataset: str, **train):
    data = {"dataset": dataset, "train_limit": 24, "test_limit": 16} if dataset != "oscillator" else \
        {"dataset": dataset, "train_limit": 4, "segment_steps": 50}
    model_table = {"kind": model, "hidden": [10, 8], "connectivity": 0.5} if model.startswith("ei") else {"kind": model}
    if model == "ctrnn":
        model_table["transient"] = 20
    return resolve_config(None, {"model": model_table, "rule": {"name": rule}, "data": data,
                                 "train": {"epochs": 2, "batch_size": 8 if dataset != "oscillator" else 1,
                                           "progress": False, "checkpoint_every": 1, **train}})


@pytest.mark.parametrize("model,rule,dataset", [("ei_network", "btsp", "spiral"),
                                                ("ctrnn", "fluctuation", "oscillator")])
def test_trainer_resumes_exactly(tmp_path, model, rule, dataset):
    whole = train(_config(model, rule, dataset), tmp_path / "whole", log=lambda m: None)
    train(_config(model, rule, dataset, max_steps=3), tmp_path / "part", log=lambda m: None)
    resumed = train(_config(model, rule, dataset), tmp_path / "part", resume=True, log=lambda m: None)
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "part" / "checkpoint.pt")
    for k in a["weights"]:
        assert torch.equal(a["weights"][k], b["weights"][k]), k
    assert resumed["test_metric"] == whole["test_metric"]
    assert whole["metric_name"] == ("accuracy" if rule == "btsp" else "fitness")
    assert resumed["learning"] == whole["learning"] and whole["learning"]["weight_change"]


def test_compare_reads_both_rules(tmp_path, capsys):
    from spikes.commands.compare import add_arguments, run
    import argparse
    train(_config("ei_network", "btsp", "spiral", epochs=1), tmp_path / "btsp", log=lambda m: None)
    train(_config("ctrnn", "fluctuation", "oscillator", epochs=1), tmp_path / "fl", log=lambda m: None)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args([str(tmp_path / "btsp"), str(tmp_path / "fl")])) == 0
    table = capsys.readouterr().out
    for word in ("accuracy", "fitness", "weight_change", "plateau_fraction", "flux_amplitude", "rate"):
        assert word in table, word


def test_spikes_train_cli_lif_population_and_ei_lif(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    run = tmp_path / "lif"
    proc = subprocess.run([sys.executable, "-m", "spikes.cli", "train", "--model", "lif_population", "--rule",
                           "fluctuation", "--dataset", "oscillator", "--run-dir", str(run), "--epochs", "1",
                           "--batch-size", "1", "--no-progress", "--set", "data.train_limit=2",
                           "--set", "data.segment_steps=100"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metric_name"] == "fitness" and summary["steps"] == 2
    assert summary["learning"]["weight_change"]["bias"] == 0.0                 # biases do not fluctuate by default
    lif = train(_config("ei_lif", "btsp", "spiral", epochs=1), tmp_path / "ei_lif", log=lambda m: None)
    assert lif["model"] == "ei_lif" and 0.0 <= lif["test_accuracy"] <= 1.0
    assert set(lif["learning"]["rate"]) == {"layers.0", "layers.1", "layers.2"}
