"""Issue 16: the observables logger, the rule zoo and the rule classifiers.

The statistics against numpy/scipy; a hand-built two-layer network's observables (weights, activations, the activity
change) against a hand computation, with and without unit subsampling; spiking membranes against the neuron's own
sequence run; the logger neither changes the training nor breaks an exact resume; a tiny zoo end to end through the
CLI (and reused on a second call); a classifier trained on shuffled labels stays at chance while the true labels are
found.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats as sps
from torch import nn

from spikes.datasets.tabular import load_split
from spikes.training.observables import (FUNCTIONS, OBSERVABLES, STATISTICS, ObservablesLogger, ObservablesOptions,
                                         _subset, checkpoint_steps, layer_records, load_observables, measure,
                                         settings, statistics)

N_STATS = len(FUNCTIONS) * len(STATISTICS)


def reference_statistics(v: np.ndarray) -> np.ndarray:
    out = []
    for g in (v, v ** 2, np.abs(v)):
        out += [np.linalg.norm(g), g.mean(), np.median(g), np.percentile(g, 75), g.var(), sps.skew(g),
                sps.kurtosis(g)]
    return np.asarray(out)


def test_statistics_match_numpy_and_scipy():
    rng = np.random.default_rng(3)
    for v in (rng.normal(0.2, 1.5, 501), rng.exponential(2.0, (7, 9)) - 1.0):
        np.testing.assert_allclose(statistics(torch.from_numpy(v)), reference_statistics(v.ravel()), rtol=1e-10,
                                   atol=1e-12)
    const = statistics(np.full(10, 0.5))
    assert np.isnan(const[[5, 6]]).all() and const[1] == 0.5 and const[4] == 0.0   # scipy: nan for constants


class Kind:          # the part of a ModelKind the records read
    data = "tabular"


def hand_network() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0], [-0.7, 0.4, 0.9], [1.2, 1.1, -0.2]]))
        net[0].bias.copy_(torch.tensor([0.1, -0.2, 0.05, 0.0]))
    return net


def test_observables_of_a_hand_built_layer():
    net = hand_network()
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.4], [-0.2, 0.8, 0.1]], dtype=torch.float64)
    records = layer_records(net, Kind, x, torch.zeros(3, dtype=torch.long))
    assert [r.name for r in records] == ["0", "2"] and [r.units for r in records] == [4, 2]
    opts = ObservablesOptions(unit_fractions=(1.0, 0.5), noises=(0.0,))
    sets = settings(opts)
    assert sets == [(1.0, 0.0), (0.5, 0.0)]
    obs = measure(records, sets, {}, seed=0, step=0)
    w = net[0].weight.detach().numpy()
    z = x.numpy() @ w.T + net[0].bias.detach().numpy()
    h = np.maximum(z, 0.0)
    # layer 0, all units: the weights, the ReLU block's output, the activity change sum_i relu'(z_j) W_ji
    np.testing.assert_allclose(obs[0, 0, :N_STATS], reference_statistics(w.ravel()), rtol=1e-10)
    np.testing.assert_allclose(obs[0, 0, N_STATS:2 * N_STATS], reference_statistics(h.ravel()), rtol=1e-10)
    assert np.isnan(obs[0, 0, 2 * N_STATS:3 * N_STATS]).all()                # an ANN has no membrane
    jac = (z > 0)[:, :, None] * w[None]                                      # (B, out, in)
    g = jac.sum(1)                                                           # sum over outputs, per input
    expected = [g.sum(1).mean() / 4, (g ** 2).sum(1).mean() / 4, np.abs(g).sum(1).mean() / 4]
    np.testing.assert_allclose(obs[0, 0, -3:], expected, rtol=1e-10)
    # half of the units: the same statistics of those rows / columns, the activity change over those outputs
    idx = _subset(4, 0.5, 0, 0).numpy()
    assert len(idx) == 2
    np.testing.assert_allclose(obs[1, 0, :N_STATS], reference_statistics(w[idx].ravel()), rtol=1e-10)
    np.testing.assert_allclose(obs[1, 0, N_STATS:2 * N_STATS], reference_statistics(h[:, idx].ravel()), rtol=1e-10)
    g_sub = jac[:, idx].sum(1)
    np.testing.assert_allclose(obs[1, 0, -3:], [g_sub.sum(1).mean() / 2, (g_sub ** 2).sum(1).mean() / 2,
                                                np.abs(g_sub).sum(1).mean() / 2], rtol=1e-10)
    # the last layer: its output is the model's, d y / d h = W_2
    w2 = net[2].weight.detach().numpy()
    np.testing.assert_allclose(obs[0, 1, -3], w2.sum(0).sum() / 2, rtol=1e-10)
    assert len(OBSERVABLES) == obs.shape[-1] == 3 * N_STATS + 3


def test_noise_is_seeded_and_scaled_by_the_first_checkpoint():
    net = hand_network()
    x = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    records = layer_records(net, Kind, x, torch.zeros(16, dtype=torch.long))
    sets = [(1.0, 0.0), (1.0, 0.5)]
    scales: dict = {}
    a = measure(records, sets, scales, seed=4, step=10)
    b = measure(records, sets, dict(scales), seed=4, step=10)
    np.testing.assert_array_equal(a, b)                                   # same seed and step: same noise
    assert scales[(0, "weight")] == pytest.approx(float(net[0].weight.detach().std()))
    assert not np.allclose(a[0], a[1])                                    # the noisy recording differs


def test_spiking_membranes_match_the_neurons_sequence_run():
    from spikes.models.classifiers import mlp_snn
    from spikes.neurons.sequence import run_sequence

    torch.manual_seed(0)
    model = mlp_snn((2, 4, 4), 3, width=6)
    x = (torch.rand(5, 4, 2, 4, 4) < 0.3).float()

    class Frames:
        data = "frames"
    records = layer_records(model, Frames, x, torch.zeros(4, dtype=torch.long))
    assert len(records) == 3 and all(r.spiking for r in records) and records[0].membrane.shape == (5, 4, 6)
    current = model.features[1](model.features[0](x))
    spikes, state = run_sequence(current, model.features[2].params, None)
    torch.testing.assert_close(records[0].membrane[-1], state.v)
    torch.testing.assert_close(records[0].act, spikes.sum(0))             # act = spike counts per sample and unit
    obs = measure(records, [(1.0, 0.0)], {}, 0, 0)
    assert np.isfinite(obs[0, 0, 2 * N_STATS:3 * N_STATS]).all() and np.isfinite(obs[0, 0, -3:]).all()


def _config(max_steps=12, checkpoint_every=0):
    from spikes.training.config import resolve_config
    return resolve_config(None, {"model": {"kind": "mlp", "width": 16, "depth": 2}, "rule": {"name": "bptt"},
                                 "data": {"dataset": "moons"},
                                 "train": {"epochs": 100, "max_steps": max_steps, "batch_size": 32, "lr": 0.05,
                                           "optimizer": "sgd", "scheduler": "constant", "progress": False,
                                           "checkpoint_every": checkpoint_every, "threads": 1}})


class Interrupt(Exception):
    pass


class StopAt:
    def __init__(self, step):
        self.step = step

    def __getattr__(self, name):               # every other hook does nothing
        return lambda *a, **k: None

    def on_step_end(self, state, out):
        if state.step == self.step:
            raise Interrupt

    def state_dict(self):
        return {}


def test_logger_changes_no_weight_and_resumes_exactly(tmp_path):
    from spikes.training.loop import train
    from spikes.training.checkpoint import load_checkpoint

    opts = ObservablesOptions(checkpoints=5, probe_size=16)
    train(_config(), tmp_path / "plain", log=lambda m: None)
    train(_config(), tmp_path / "logged", log=lambda m: None, callbacks=[ObservablesLogger(tmp_path / "a.npz", opts)])
    w0 = load_checkpoint(tmp_path / "plain" / "checkpoint.pt")["weights"]
    w1 = load_checkpoint(tmp_path / "logged" / "checkpoint.pt")["weights"]
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)
    a = load_observables(tmp_path / "a.npz")
    assert list(a["steps"]) == checkpoint_steps(12, 5) == [0, 3, 6, 9, 12]
    assert a["obs"].shape == (len(settings(opts)), 3, len(OBSERVABLES), 5)
    assert [layer["position"] for layer in a["meta"]["layers"]] == [0, 1, 2]
    with pytest.raises(Interrupt):          # killed at step 8, after the checkpoint of step 5
        train(_config(checkpoint_every=5), tmp_path / "killed", log=lambda m: None,
              callbacks=[ObservablesLogger(tmp_path / "b.npz", opts), StopAt(8)])
    assert not (tmp_path / "b.npz").exists()
    train(_config(checkpoint_every=5), tmp_path / "killed", resume=True, log=lambda m: None,
          callbacks=[ObservablesLogger(tmp_path / "b.npz", opts)])
    np.testing.assert_array_equal(load_observables(tmp_path / "b.npz")["obs"], a["obs"])


def test_moons_is_generated_from_the_seed():
    a, b, c = load_split("moons", 0), load_split("moons", 0), load_split("moons", 1)
    assert a.x_train.shape[1] == 2 and a.n_classes == 2 and a.classes == ["upper", "lower"]
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1000
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)


def synthetic_zoo(n_networks=80, n_classes=4, seed=0):
    """Two layers per network; class c shifts observable c's trajectory (learnable), the rest is noise."""
    from spikes.reports.rule_identify import Zoo
    rng = np.random.default_rng(seed)
    names = [f"weight_raw_{s}" for s in STATISTICS] + [f"act_raw_{s}" for s in STATISTICS]
    labels = np.repeat(np.arange(n_classes), n_networks // n_classes)
    obs = rng.normal(size=(2 * len(labels), 1, len(names), 6))
    for k, c in enumerate(labels):
        obs[2 * k:2 * k + 2, 0, c] += np.linspace(0, 3, 6)
        obs[2 * k:2 * k + 2, 0, 7 + c] += np.linspace(0, 3, 6)
    return Zoo(obs, np.repeat(labels, 2), np.repeat(np.arange(len(labels)), 2), np.tile([0, 2], len(labels)),
               [f"c{i}" for i in range(n_classes)], names, [(1.0, 0.0)], {})


def test_shuffled_labels_stay_at_chance_true_labels_do_not():
    from spikes.reports.rule_identify import evaluate, network_splits
    zoo = synthetic_zoo()
    true = evaluate(zoo, "all", "rf", n_estimators=50)
    shuffled = evaluate(zoo, "all", "rf", shuffle_labels=True, n_estimators=50)
    assert true["mean"] > 0.9
    confusion = np.asarray(true["confusion"])          # every test layer once per split, each class 5 networks x 2
    assert confusion.sum(1).tolist() == [10 * 10] * 4
    assert np.trace(confusion) / confusion.sum() == pytest.approx(true["mean"])        # equal-size test sets
    assert [true["per_class"][c] for c in zoo.classes] == pytest.approx(np.diag(confusion) / 100)
    assert abs(shuffled["mean"] - 0.25) < 0.12, shuffled
    svm = evaluate(zoo, "weights", "svm", n_splits=3)
    assert svm["mean"] > 0.9
    # the splits: category-balanced, whole networks on one side
    for train, test in network_splits(np.repeat(np.arange(4), 20), 10, 0.25, 0):
        assert len(set(train) & set(test)) == 0 and len(test) == 20
        assert np.bincount(np.repeat(np.arange(4), 20)[test]).tolist() == [5, 5, 5, 5]


def test_network_votes_sum_the_layers_scores():
    from spikes.reports.rule_identify import network_votes
    scores = np.log(np.array([[0.6, 0.4], [0.1, 0.9], [0.7, 0.3], [0.8, 0.2], [0.45, 0.55]]))
    # network 0: layers 0.6*0.1 < 0.4*0.9 -> class 1 though its first layer says 0; network 1: 0.7*0.8*0.45 > ...
    assert network_votes(scores, np.array([0, 0, 1, 1, 1])) == {0: 1, 1: 0}


def test_a_network_s_layers_together_identify_it_better_than_one_layer():
    from spikes.reports.rule_identify import Zoo, evaluate
    rng = np.random.default_rng(3)
    names = [f"weight_raw_{s}" for s in STATISTICS]
    labels = np.repeat(np.arange(4), 20)
    obs = rng.normal(size=(6 * len(labels), 1, len(names), 6))     # six layers per network, weak signal in each
    for k, c in enumerate(labels):
        obs[6 * k:6 * k + 6, 0, c] += np.linspace(0, 1.0, 6)
    zoo = Zoo(obs, np.repeat(labels, 6), np.repeat(np.arange(len(labels)), 6), np.tile([0, 1, 1, 1, 1, 2], 80),
              ["a", "b", "c", "d"], names, [(1.0, 0.0)], {})
    true = evaluate(zoo, "weights", "rf", n_estimators=50)
    assert true["network"]["mean"] > true["mean"] + 0.1, true
    shuffled = evaluate(zoo, "weights", "rf", n_estimators=50, shuffle_labels=True)
    assert abs(shuffled["network"]["mean"] - 0.25) < 0.15, shuffled["network"]


def test_change_features_are_relative_to_the_start():
    from spikes.reports.rule_identify import features
    zoo = synthetic_zoo(8)
    raw = features(zoo, "weights", 0, "raw")
    change = features(zoo, "weights", 0, "change")
    np.testing.assert_allclose(change, np.arcsinh((raw - raw[..., :1]) / (np.abs(raw[..., :1]) + 1e-8)))
    assert features(zoo, "weights", 0, "both").shape == (raw.shape[0], 2 * raw.shape[1], raw.shape[2])
    steps = features(zoo, "weights", 0, "increments")
    assert steps.shape == (raw.shape[0], raw.shape[1], raw.shape[2] - 1)
    np.testing.assert_allclose(steps[..., 3], change[..., 4] - change[..., 3])
    assert raw.shape[1] == len(STATISTICS)                      # the zoo's weight_raw_* observables


def test_bad_input_names_the_parameter(tmp_path):
    from spikes.pipeline.rule_zoo import ZooOptions
    from spikes.reports.rule_identify import evaluate, load_zoo
    with pytest.raises(ValueError, match="class 'bp' is unknown"):
        ZooOptions(classes=("sgdm", "bp"))
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        ZooOptions(steps=1)
    with pytest.raises(FileNotFoundError, match="no zoo file"):
        load_zoo(tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match="family 'spikes' is unknown"):
        evaluate(synthetic_zoo(8), "spikes", "rf")
    with pytest.raises(ValueError, match="unit_fractions"):
        ObservablesOptions(unit_fractions=(0.0, 1.0))


def test_tiny_zoo_end_to_end(tmp_path, capsys):
    from spikes.cli import main
    out = tmp_path / "zoo"
    classes = ["sgdm", "ia", "eprop", "gt"]
    argv = ["rules", "zoo", "--out", str(out), "--networks", "2", "--steps", "4", "--checkpoints", "3",
            "--snn-fraction", "0.5", "--classes", *classes, "--no-progress"]
    assert main(argv) == 0
    meta = json.loads((out / "observables.json").read_text())
    assert [n["cls"] for n in meta["networks"]] == [c for c in classes for _ in range(2)]
    assert {n["arch"] for n in meta["networks"]} >= {"rsnn", "gt"} and meta["steps"] == [0, 2, 4]
    with np.load(out / "observables.npz") as f:
        assert f["obs"].shape[1:] == (len(meta["settings"]), len(OBSERVABLES), 3)
        assert len(f["label"]) == sum(n["layers"] for n in meta["networks"])
    capsys.readouterr()
    assert main(argv) == 0 and "0 networks trained, 8 reused" in capsys.readouterr().out
    assert main(["rules", "identify", str(out / "observables.npz"), "--out", str(tmp_path / "id"), "--splits", "2",
                 "--trees", "10"]) == 0
    result = json.loads((tmp_path / "id" / "results.json").read_text())
    assert set(result["scores"]) == {"rf", "svm", "conv1d"} and result["chance"] == pytest.approx(1 / 4)
    assert "activity_change" in result["families_missing"]         # e-prop's recurrent and GT layers have none
    assert (tmp_path / "id" / "robustness.png").stat().st_size > 0 and (tmp_path / "id" / "accuracy.png").exists()
    assert main(["rules", "identify", str(tmp_path / "none.npz")]) == 2


def test_zoo_alignment_networks_draw_feedback_with_the_weights_spread():
    """Every fa/ia network of the zoo asks for feedback_init='weight', and the rule built from its rule table gives
    each layer a B whose std matches W's (Kaiming-uniform B would be sqrt(6) narrower than the mlp kind's W)."""
    from spikes.learning.rule import RULES
    from spikes.models.mlp import MLP
    from spikes.pipeline.rule_zoo import ZooOptions, population

    specs = [s for s in population(ZooOptions(networks=6)) if s["cls"] in ("fa", "ia")]
    assert {s["cls"] for s in specs} == {"fa", "ia"}
    for spec in specs:
        table = dict(spec["tables"]["rule"])
        assert table.pop("name") == spec["cls"]
        table.pop("grad_clip", None)
        cls = RULES[spec["cls"]]
        rule = cls(cls.Options(**table))
        torch.manual_seed(0)
        model = MLP(64, 10, width=64, depth=2)
        rule.setup(model, torch.optim.SGD(model.parameters(), lr=0.0), seed=1)
        for name, module in rule.layers:
            ratio = float(rule.feedback[name].std() / module.weight.detach().std())
            assert ratio == pytest.approx(1.0, rel=0.15), (spec["name"], name)


def test_zoo_learning_rates_and_datasets_follow_the_options():
    """Each paper-class network's lr lies within BASE_LR / spread ... BASE_LR * spread of its optimiser, every network
    clips its gradient at 1, ``datasets`` restricts the ANN networks' sets, and a bad option is named."""
    from spikes.pipeline.rule_zoo import BASE_LR, ZooOptions, population

    specs = population(ZooOptions(networks=12, datasets=("digits",), lr_spread=2.0))
    lrs = {"sgd": [], "adam": []}
    for spec in specs:
        train, rule = spec["tables"]["train"], spec["tables"]["rule"]
        assert rule["grad_clip"] == 1.0
        assert train["optimizer"] == ("adam" if spec["cls"] == "adam" else "sgd")
        lrs[train["optimizer"]].append(train["lr"])
        if spec["arch"] == "ann":
            assert spec["tables"]["data"]["dataset"] == "digits"
    for opt, values in lrs.items():
        ratio = np.asarray(values) / BASE_LR[opt]
        assert ratio.min() >= 0.5 and ratio.max() <= 2.0 and ratio.max() / ratio.min() > 1.5, opt
    assert population(ZooOptions(networks=3)) == population(ZooOptions(networks=3))
    with pytest.raises(ValueError, match="'cifar'"):
        ZooOptions(datasets=("cifar",))
    with pytest.raises(ValueError, match="lr_spread"):
        ZooOptions(lr_spread=0.5)


def test_accuracy_figure_adds_the_per_network_panel_when_the_result_has_it():
    from spikes.reports.rule_identify import accuracy_figure, evaluate
    zoo = synthetic_zoo(16)
    r = evaluate(zoo, "all", "rf", n_splits=2, n_estimators=10)
    result = {"scores": {"rf": {"all": r}}, "chance": 0.25, "classes": zoo.classes, "n_networks": 16}
    panels = accuracy_figure(result).axes
    assert [a.get_title() for a in panels] == ["per layer", "per network (its layers' scores summed)"]
    assert panels[1].patches[0].get_height() == pytest.approx(100 * r["network"]["mean"])
    del r["network"]
    assert len(accuracy_figure(result).axes) == 1


def test_augmented_views_come_from_the_training_networks_only():
    """Setting 1 is an exact copy of the clean recording: were the test networks' copies among the training rows,
    the forest would look its test rows up (near 100 %); the observables are pure noise, so it must stay at chance.
    Tested on setting 2, which carries the label, the augmented evaluation does read it; an unrecorded fraction is
    refused by name."""
    from spikes.reports.rule_identify import Zoo, evaluate
    rng = np.random.default_rng(5)
    names = [f"weight_raw_{s}" for s in STATISTICS]
    labels = np.repeat(np.arange(4), 20)
    clean = rng.normal(size=(2 * len(labels), len(names), 6))
    obs = np.stack([clean, clean, clean], 1)
    obs[:, 2, 0] += np.repeat(labels, 2)[:, None] * np.linspace(0, 3, 6)      # the 0.25 view shows the class
    zoo = Zoo(obs, np.repeat(labels, 2), np.repeat(np.arange(len(labels)), 2), np.tile([0, 2], len(labels)),
              ["a", "b", "c", "d"], names, [(1.0, 0.0), (0.5, 0.0), (0.25, 0.0)], {})
    copy = evaluate(zoo, "weights", "rf", n_estimators=30, augment=(0.5,), features_mode="raw")
    assert abs(copy["mean"] - 0.25) < 0.12, copy["mean"]
    shown = evaluate(zoo, "weights", "rf", n_estimators=30, augment=(0.25,), setting=2, features_mode="raw")
    assert shown["mean"] > 0.9
    with pytest.raises(ValueError, match=r"augment fraction 0.1 is not recorded in the zoo .*1, 0.5, 0.25"):
        evaluate(zoo, "weights", "rf", augment=(0.1,))


def test_importance_finds_the_observables_that_carry_the_class():
    from spikes.reports.rule_identify import observable_importance
    zoo = synthetic_zoo()          # class c moves weight observable c and act observable 7 + c
    ranked = observable_importance(zoo, "all", n_estimators=100)
    assert {name for name, _ in ranked[:8]} == {zoo.observables[i] for i in (0, 1, 2, 3, 7, 8, 9, 10)}
    assert sum(share for _, share in ranked) == pytest.approx(1.0, abs=0.05)      # the position's share is small
