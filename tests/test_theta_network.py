"""The theta_snn kind (models/theta_network.py): TTFS coding, the paper's loss, the Yin-Yang set, training through the
one trainer from a silent start (CLI end to end, exact resume)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikes.datasets.tasks.yinyang import yin_yang, yin_yang_class, yin_yang_split
from spikes.learning.rule import Batch
from spikes.models.registry import KINDS
from spikes.models.theta_network import ThetaNetwork, TTFSObjective
from spikes.options import ConfigError
from spikes.training import load_checkpoint
from spikes.training.config import parse_overrides, resolve_config
from spikes.training.data import DataOptions, open_dataset
from spikes.training.loop import train

REPO = Path(__file__).resolve().parents[1]


def test_yinyang_geometry_balance_and_seeds():
    # hand-placed points: the two dots, the upper yin half, the lower yang half, the left half-disc
    pts = np.array([[0.75, 0.5], [0.25, 0.5], [0.5, 0.9], [0.5, 0.1], [0.25, 0.68], [0.75, 0.32]])
    assert yin_yang_class(pts[:, 0], pts[:, 1]).tolist() == [2, 2, 0, 1, 0, 1]
    x, y = yin_yang(3000, seed=5)
    assert x.shape == (3000, 4) and np.allclose(x[:, 2:], 1 - x[:, :2])
    assert np.all(np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5)
    assert np.array_equal(yin_yang_class(x[:, 0], x[:, 1]), y)
    assert np.all(np.abs(np.bincount(y) / 3000 - 1 / 3) < 0.03)                      # balanced
    assert np.array_equal(yin_yang(50, 5)[0], yin_yang(50, 5)[0])                  # same seed, same set
    tr, te = yin_yang_split("train", 0)[0], yin_yang_split("test", 0)[0]
    assert len(tr) == 5000 and len(te) == 1000 and not np.isin(te[:, 0], tr[:, 0]).any()
    s = open_dataset("yinyang", "val", DataOptions(test_limit=10))
    assert len(s) == 1000 and s.kind == "tabular" and s.n_classes == 3 and s.input_shape == (4,)
    with pytest.raises(ConfigError, match="data.n_time_bins"):
        open_dataset("yinyang", "train", DataOptions(n_time_bins=3))


def test_coding_and_silent_start():
    net = ThetaNetwork(4, 3, hidden=(6,), coding="latency", input_start=0.1, input_span=1.0, bias_input=True)
    t = net.input_spike_times(torch.tensor([[0.0, 1.0, 0.25, 0.5]], dtype=torch.float64))
    assert torch.allclose(t, torch.tensor([[1.1, 0.1, 0.85, 0.6, 0.1]], dtype=torch.float64))
    binary = ThetaNetwork(3, 2, hidden=(4,))
    t = binary.input_spike_times(torch.tensor([[0.2, 0.5, 0.9]]))
    assert torch.equal(torch.isinf(t), torch.tensor([[True, False, False]])) and float(t[0, 1]) == 0.02
    with pytest.raises(ValueError, match="expected inputs"):
        binary(torch.zeros(2, 5))
    # the default digits network: every hidden and output neuron silent on the test set before training
    data = open_dataset("digits", "test", DataOptions())
    model = KINDS["theta_snn"].construct({**KINDS["theta_snn"].resolve(KINDS["theta_snn"].options(), data), "seed": 0})
    with torch.no_grad():
        out = model(data.x.unsqueeze(0))
    assert float((out.hidden_counts == 0).double().mean()) > 0.95
    assert not torch.isfinite(out.ordinary).any()
    assert torch.all(out.times > model.trial_time)                                 # pseudospikes after T


def test_loss_is_the_papers_and_its_gradient_matches_finite_differences():
    torch.manual_seed(0)
    net = ThetaNetwork(4, 3, hidden=(5,), coding="latency", bias_input=True, w_scale=3.0, phi0_fraction=0.7, seed=2)
    x = torch.rand(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    objective = TTFSObjective(gamma=0.1, trial_time=net.trial_time)
    out = net(x)
    t = out.times
    by_hand = (-torch.log_softmax(-t, 1)[range(6), y] + 0.1 * (torch.exp(t[range(6), y] / 2.0) - 1)).mean()
    loss = objective.loss(out, Batch(x, y))
    assert float(loss.detach()) == pytest.approx(float(by_hand), rel=1e-12)
    assert int(out.hidden_counts.sum()) > 0                                         # a real spiking case
    loss.backward()
    w = net.layers[0].weight
    for idx in [(0, 0), (2, 3), (4, 4)]:
        h, saved = 1e-6, float(w.data[idx])
        vals = []
        for s in (+1, -1):
            w.data[idx] = saved + s * h
            with torch.no_grad():
                vals.append(float(objective.loss(net(x), Batch(x, y))))
        w.data[idx] = saved
        assert (vals[0] - vals[1]) / (2 * h) == pytest.approx(float(w.grad[idx]), rel=1e-4, abs=1e-9)
    sums = objective.metric_sums(out, Batch(x, y))
    assert set(sums) == {"accuracy", "loss", "accuracy_ordinary", "hidden_spikes_per_neuron", "silent_hidden_fraction"}
    assert sums["hidden_spikes_per_neuron"] == pytest.approx(float(out.hidden_counts.double().mean(1).sum()))


def _tables(**train_keys):
    return parse_overrides(['model.kind="theta_snn"', 'data.dataset="yinyang"', 'model.coding="latency"',
                            "model.bias_input=true", "model.hidden=[16]", "data.train_limit=96", "data.test_limit=64",
                            "train.batch_size=16", "train.lr=0.01", "train.threads=1", "train.progress=false",
                            *[f"train.{k}={v}" for k, v in train_keys.items()]])


def test_trainer_runs_and_resumes_exactly(tmp_path):
    ref = train(resolve_config(None, _tables(epochs=3)), tmp_path / "ref", log=lambda m: None)
    assert ref["completed"] and ref["steps"] == 18 and ref["model"] == "theta_snn"
    assert {"test_accuracy_ordinary", "test_hidden_spikes_per_neuron", "test_silent_hidden_fraction"} <= set(ref)
    assert set(ref["firing_rates"]) == {"layers.0", "layers.1"}        # spikes per neuron per sample, per layer
    train(resolve_config(None, _tables(epochs=3, max_steps=7)), tmp_path / "cut", log=lambda m: None)
    train(resolve_config(None, _tables(epochs=3)), tmp_path / "cut", resume=True, log=lambda m: None)
    a = load_checkpoint(tmp_path / "ref" / "checkpoint.pt")["weights"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["weights"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    phi0 = a["layers.0.phi0"]
    assert float(phi0.min()) >= 0 and float(phi0.max()) <= 6.0                     # phases kept in [0, Theta]
    with pytest.raises(ConfigError, match="model.hidden"):
        train(resolve_config(None, {**_tables(epochs=1), "model": {"hidden": [0]}}), tmp_path / "bad",
              log=lambda m: None)


def test_cli_train_theta_on_yinyang(tmp_path):
    run = tmp_path / "cli"
    out = subprocess.run([sys.executable, "-m", "spikes.cli", "train", "--model", "theta_snn", "--rule", "bptt",
                          "--dataset", "yinyang", "--run-dir", str(run), "--epochs", "1", "--batch-size", "32",
                          "--train-limit", "64", "--test-limit", "32", "--no-progress", "--set", "model.hidden=[8]",
                          "--set", 'model.coding="latency"'], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "theta_snn" and summary["steps"] == 2 and 0 <= summary["test_accuracy"] <= 1
    assert math.isfinite(summary["test_loss"])


def test_nir_export_refuses_theta_naming_the_layer(tmp_path):
    from spikes.deploy.nir_io import write_nir

    graph = ThetaNetwork(4, 3, hidden=(5,)).to_graph(dt=0.01)
    assert [type(graph.nodes[n]).__name__ for n in ("w1", "theta1", "w2", "theta2")] == ["Affine", "Theta"] * 2
    with pytest.raises(ValueError, match="layer 'theta1' is a theta .*cannot be exported to NIR"):
        write_nir(graph, tmp_path / "theta.nir")
    assert not (tmp_path / "theta.nir").exists()


@pytest.mark.slow
def test_digits_from_a_silent_start_reaches_90_percent(tmp_path):
    """The acceptance bar on binarised digits (about a minute): > 95 % of the neurons silent before training, >= 90 %
    test accuracy after 60 epochs, and the hidden layer spiking sparsely."""
    tables = parse_overrides(['model.kind="theta_snn"', 'data.dataset="digits"', "train.epochs=60",
                              "train.batch_size=32", "train.lr=0.01", "train.threads=1", "train.progress=false",
                              "train.checkpoint_every=0"])
    config = resolve_config(None, tables)
    test = open_dataset("digits", "test", DataOptions())
    model = config.kind.construct({**config.kind.resolve(config.model_options, test), "seed": 0})
    with torch.no_grad():
        before = model(test.x)
    assert float((before.hidden_counts == 0).double().mean()) > 0.95 and not torch.isfinite(before.ordinary).any()
    summary = train(config, tmp_path / "digits", log=lambda m: None)
    assert summary["test_accuracy"] >= 0.90
    assert 0 < summary["test_hidden_spikes_per_neuron"] < 2
