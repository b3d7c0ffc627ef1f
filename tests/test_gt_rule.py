"""The GT local learning rule (hand-computed), the trainer's GT training against a hand-written epoch loop on the
same batches, and the spike count falling while a network learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikes.learning.gt_local import GTLocal
from spikes.learning.gt_rule import differential_q, gt_rule_update, random_coupling
from spikes.models.gt_network import GTNetwork, GTNetworkConfig, load_split
from spikes.pipeline.gt import gt_run_config, train_gt
from spikes.training import CHECKPOINT_FILE, batch_order, load_model, resolve_config, train


def test_rule_matches_hand_computed_update():
    q0 = torch.tensor([[0.0, 0.2], [0.2, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    # one sample: s+ = [1, 0], s- = [0, 1]; v+ = [0.1, -0.3], v- = [-0.5, 0.2] -> d = [0.6, -0.5]
    s = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
    v = torch.tensor([[0.1, -0.3, -0.5, 0.2]], dtype=torch.float64)
    theta = torch.tensor([0.1, 0.0], dtype=torch.float64)
    new = gt_rule_update(q0, s, v, eta=0.1, mask=mask, theta=theta)
    # delta_ij = (s+_i - s-_i)(d_j + theta_j): delta_01 = 1 * (-0.5) = -0.5, delta_10 = -1 * (0.6 + 0.1) = -0.7
    off = 0.2 + 0.1 * (-0.5 + -0.7) / 2
    assert new.flatten().tolist() == pytest.approx([0.0, off, off, 0.0], abs=1e-12)


def test_coupling_structure():
    q0, mask = random_coupling(40, std=0.5, density=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(q0, q0.T) and torch.equal(mask, mask.T)
    assert q0.diagonal().abs().sum() == 0 and 0.4 < mask.mean() < 0.6
    q = differential_q(q0)
    v = torch.randn(3, 80, dtype=torch.float64)
    d = v[:, :40] - v[:, 40:]
    qv = v @ q.T
    assert torch.allclose(qv[:, :40], d @ q0.T + v[:, :40]) and torch.allclose(qv[:, 40:], -d @ q0.T + v[:, 40:])


def hand_update(layer, s, v, eta):
    """The rule written out: Q0 += eta mask (s+ - s-)^T (v+ - v- + theta), then (Q0 + Q0^T) / 2."""
    n = layer.q0.shape[0]
    post = s[:, :n] - s[:, n:]
    pre = v[:, :n] - v[:, n:] + layer.theta
    q0 = layer.q0 + eta * layer.mask * (post.T @ pre)
    layer.set_q0(0.5 * (q0 + q0.T))


@pytest.mark.parametrize("arch", ["network1", "network2", "network3"])
def test_trainer_epochs_equal_the_hand_loop_on_the_same_batches(tmp_path, arch):
    """Two epochs of the trainer (rule gt, wine, batches of 8 in its seeded order) give exactly the Q0 of a loop that
    runs ``net.run(x[idx], codes, update=hand_update)`` on the same batches and counts the epochs itself; network2
    freezes layer 1 after its first epoch (layer1_epochs 1), so the second epoch checks the epoch count too."""
    epochs, seed, bs = 2, 3, 8
    eta = (1e-3,) if arch == "network1" else (2e-4, 1e-3)
    model = {"kind": "gt_network", "architecture": arch, "iterations": 20, "eta1": eta[0], "layer1_epochs": 1}
    if len(eta) == 2:
        model["eta2"] = eta[1]
    config = resolve_config(None, {"model": model, "rule": {"name": "gt"}, "data": {"dataset": "wine"},
                                   "train": {"epochs": epochs, "batch_size": bs, "seed": seed, "checkpoint_every": 0,
                                             "threads": 1, "progress": False}})
    train(config, tmp_path, log=lambda m: None)
    trained, _, _ = load_model(tmp_path / CHECKPOINT_FILE)

    split = load_split("wine", seed=seed)
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    net = GTNetwork(13, 3, GTNetworkConfig(arch, iterations=20, eta=eta, layer1_epochs=1), seed=seed)
    start = [layer.q0.clone() for layer in net.layers]
    for epoch in range(epochs):
        for idx in batch_order(len(x), bs, seed, epoch):
            net.run(x[idx], net.label_codes(y[idx]), update=hand_update)
        net.epochs_trained += 1
    assert trained.epochs_trained == net.epochs_trained == epochs
    for k, (a, b, q_start) in enumerate(zip(trained.layers, net.layers, start)):
        assert torch.equal(a.q0, b.q0), f"layer {k + 1}"
        assert not torch.equal(b.q0, q_start)                          # both layers learned
        assert torch.equal(a.params.q, differential_q(a.q0))
    if arch == "network2":                                             # layer 1 frozen in epoch 2: learning rate 0
        assert net.learning_rates() == [0.0, eta[1]]


def test_rule_updates_the_layer_it_is_handed():
    net = GTNetwork(3, 2, GTNetworkConfig("network1", eta=(0.1,)), seed=1)
    layer = net.layers[0]
    n = layer.n_units
    g = torch.Generator().manual_seed(2)
    s = (torch.rand(4, 2 * n, generator=g) < 0.3).double()
    v = torch.rand(4, 2 * n, generator=g, dtype=torch.float64) - 0.5
    expected = gt_rule_update(layer.q0, s, v, 0.1, layer.mask, layer.theta)
    GTLocal.update_layer(layer, s, v, 0.1)
    assert torch.equal(layer.q0, expected) and torch.equal(layer.params.q, differential_q(expected))


def test_training_reduces_spiking_on_wine(tmp_path):
    split = load_split("wine", seed=0)
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    fresh = GTNetwork(13, 3, GTNetworkConfig("network1", eta=(1e-3,)), seed=0)       # the trainer's start (seed 0)
    before = float(fresh.run(x, fresh.label_codes(y)).total.sum())
    result = train_gt(gt_run_config("wine", "network1", (1e-3,), epochs=3, seed=0), tmp_path)
    net = result.net
    after = float(net.run(x, net.label_codes(y)).total.sum())
    assert after < 0.8 * before  # the whole training set, no learning during the measurement
    assert len(result.train_spikes) == 3 and np.all(np.diff(result.train_spikes) < 0)  # falls epoch after epoch
    assert result.summary["train_spikes_per_sample"] == result.train_spikes
    assert len(result.val_accuracy) == 3 and result.val_accuracy[result.best_epoch] == max(result.val_accuracy)
    acc = float((net.predict(torch.from_numpy(split.x_test))[0] == torch.from_numpy(split.y_test)).double().mean())
    assert acc >= 0.85  # chance is about 0.4


def test_bad_input_names_what_is_wrong():
    net = GTNetwork(3, 2, GTNetworkConfig("network2"), seed=0)
    x, codes = torch.zeros(1, 3), net.label_codes(torch.tensor([0]))
    with pytest.raises(ValueError, match="update must be a callable"):
        net.run(x, codes, update=1.0)
    with pytest.raises(ValueError, match=r"layer gt2: Q0 must be a \(6, 6\) tensor, got \(4, 4\)"):
        net.load_state_dict({"q0": [net.layers[0].q0, torch.zeros(4, 4)], "epochs_trained": 0})
    with pytest.raises(ValueError, match="1 Q0 matrices for 2 layers"):
        net.load_state_dict({"q0": [net.layers[0].q0], "epochs_trained": 0})
    with pytest.raises(KeyError, match="no 'epochs_trained'"):
        net.load_state_dict({"q0": []})
    with pytest.raises(ValueError, match="rule 'gt' trains growth-transform networks; Linear has no run"):
        GTLocal().train_step(torch.nn.Linear(2, 2), None, None)
