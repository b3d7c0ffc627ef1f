"""e-prop and BPTT on the rsnn kind through the one trainer: a trainer step is e-prop's (and BPTT's) update
computed by hand, learning trends on tiny cases, and the ``spikes eprop`` / ``spikes train --dataset cue`` commands."""
from __future__ import annotations

import json

import pytest
import torch

from spikes.datasets.tasks import CueSet, CueTaskConfig, PatternTaskConfig, cue_task, pattern_task
from spikes.learning.eprop import EProp, EPropConfig
from spikes.learning.eprop_losses import SequenceCrossEntropy, SequenceMSE
from spikes.learning.eprop_rule import Eprop
from spikes.learning.rule import Batch, Objective
from spikes.models.rsnn import RSNN, RSNNConfig
from spikes.training.checkpoint import load_checkpoint
from spikes.training.config import resolve_config
from spikes.training.loop import CHECKPOINT_FILE, METRICS_FILE, train

TASK = CueTaskConfig(n_cues=3, t_delay=200.0, dt=10.0)       # T = 45 + 20 + 15 = 80 steps


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cue_config(rule: dict, n_rec: int = 12, n_adaptive: int = 6, c_reg: float = 1.0, lr: float = 5e-3,
               batch_size: int = 8, seed: int = 3):
    return resolve_config(None, {
        "model": {"kind": "rsnn", "n_rec": n_rec, "n_adaptive": n_adaptive, "dt": TASK.dt, "tau_a": 2000.0,
                  "n_ref": 0, "c_reg": c_reg, "f_target": 10.0},
        "rule": rule, "data": {"dataset": "cue"},
        "train": {"batch_size": batch_size, "lr": lr, "optimizer": "adam", "scheduler": "constant", "seed": seed,
                  "checkpoint_every": 0, "threads": 1, "progress": False}})


def train_cue(tmp_path, config, n_batches: int, name: str = "run", test_trials: int = 8):
    seed, bs = config.train.seed, config.train.batch_size
    summary = train(config, tmp_path / name, log=lambda m: None, train_set=CueSet(n_batches, bs, TASK, seed),
                    test_set=CueSet(1, test_trials, TASK, seed, "test"))
    return summary, load_checkpoint(tmp_path / name / CHECKPOINT_FILE)["weights"]


def hand_network(config) -> RSNN:
    o = config.model_options
    return RSNN(RSNNConfig(n_in=TASK.n_in, n_rec=o.n_rec, n_out=2, n_adaptive=o.n_adaptive, dt=o.dt, tau_m=o.tau_m,
                           tau_a=o.tau_a, tau_out=o.tau_out, v_th=o.v_th, n_ref=o.n_ref), seed=config.train.seed)


@pytest.mark.parametrize("feedback", ["symmetric", "random", "adaptive"])
def test_trainer_steps_with_rule_eprop_are_the_hand_computed_eprop_updates(tmp_path, one_thread, feedback):
    """Two batches through the trainer (rule eprop, update at the sequence end) give bit for bit the weights of
    e-prop's learner driven by hand: Adam on the network, begin, one step per time step, apply; batch k of the
    cue task drawn from seed * 100003 + k."""
    config = cue_config({"name": "eprop", "feedback": feedback, "weight_decay": 1e-2})
    _, weights = train_cue(tmp_path, config, n_batches=2)

    net = hand_network(config)
    learner = EProp(net, EPropConfig(feedback=feedback, c_reg=1.0, f_target=10.0, weight_decay=1e-2, seed=3),
                    optimizer=torch.optim.Adam(net.parameters(), lr=5e-3))
    for k in range(2):
        b = cue_task(8, TASK, seed=3 * 100003 + k)
        loss = SequenceCrossEntropy(b.labels, 2, TASK.T, b.mask)
        learner.begin(8)
        for t in range(TASK.T):
            learner.step(b.x[t], loss)
        learner.apply()
    for name, p in net.named_parameters():
        assert torch.equal(weights[name], p.detach()), name
    assert float(net.w_in.detach().sub(RSNN(net.cfg, seed=3).w_in.detach()).abs().max()) > 0   # it did learn


def test_trainer_step_with_rule_bptt_is_the_hand_computed_bptt_update(tmp_path, one_thread):
    """One batch with rule bptt: autograd through the sequence of the cue task's cross-entropy on the recall window
    plus c_reg sum_j (f_j - f0)^2, one Adam step (bit for bit), w_rec's diagonal zero."""
    config = cue_config({"name": "bptt"})
    _, weights = train_cue(tmp_path, config, n_batches=1)

    net = hand_network(config)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    b = cue_task(8, TASK, seed=3 * 100003)
    y, z = net(b.x)
    f = z.mean(dim=(0, 1))
    loss = SequenceCrossEntropy(b.labels, 2, TASK.T, b.mask).total(y) + ((f - 10.0 * TASK.dt / 1000) ** 2).sum()
    loss.backward()
    opt.step()
    for name, p in net.named_parameters():
        assert torch.equal(weights[name], p.detach()), name
    assert torch.equal(torch.diagonal(weights["w_rec"]), torch.zeros(12))


def test_constrain_rezeroes_the_recurrent_diagonal():
    net = RSNN(RSNNConfig(n_in=3, n_rec=5, n_out=2), seed=0)
    with torch.no_grad():
        net.w_rec.add_(1.0)
    off = net.w_rec.detach() * net.no_self
    net.constrain_()
    assert torch.equal(torch.diagonal(net.w_rec.detach()), torch.zeros(5))
    assert torch.equal(net.w_rec.detach(), off)


def test_bptt_and_eprop_start_from_the_same_loss(tmp_path, one_thread):
    """Same seed, same first forward pass, whatever the rule (the rules differ only in the update): the first
    logged loss (task loss plus the firing-rate regulariser) is the same."""
    first = []
    for rule in ({"name": "bptt"}, {"name": "eprop", "feedback": "random"}):
        train_cue(tmp_path, cue_config(rule), n_batches=1, name=rule["name"])
        first.append(json.loads((tmp_path / rule["name"] / METRICS_FILE).read_text().splitlines()[0])["loss"])
    assert first[0] == pytest.approx(first[1], rel=1e-5)


def test_eprop_learns_a_short_cue_task_better_than_chance(tmp_path, one_thread):
    """20 batches of 32 trials (3 cues, 200 ms delay, 10 ms steps): test accuracy on 256 trials >= 0.7 (at chance
    0.5, one standard deviation is 0.03), and above the untrained network's."""
    config = cue_config({"name": "eprop", "feedback": "symmetric"}, n_rec=32, n_adaptive=16, lr=1e-2,
                        batch_size=32, seed=0)
    summary, weights = train_cue(tmp_path, config, n_batches=20, test_trials=256)
    test = cue_task(256, TASK, seed=99991)
    untrained = hand_network(config)
    with torch.no_grad():
        before = 1.0 - float(SequenceCrossEntropy(test.labels, 2, TASK.T, test.mask).errors(untrained(test.x)[0]).mean())
    assert summary["test_accuracy"] >= 0.7 and summary["test_accuracy"] > before + 0.1
    assert summary["steps"] == 20 and summary["dataset"] == "cue"


class PatternObjective(Objective):
    """Regression of a target sequence: ``SequenceMSE`` (the rule is not tied to the rsnn kind's objective)."""

    metric_name = "loss"
    higher_is_better = False

    def loss(self, output, batch: Batch) -> torch.Tensor:
        return SequenceMSE(batch.y).total(output[0])

    def online(self, batch: Batch) -> SequenceMSE:
        return SequenceMSE(batch.y)

    def metric_sums(self, output, batch: Batch) -> dict[str, float]:
        return {"loss": float(self.loss(output, batch))}


def test_rule_eprop_lowers_pattern_generation_loss(one_thread):
    x, y = pattern_task(PatternTaskConfig(n_in=20, duration=300, dt=10.0), seed=0)
    net = RSNN(RSNNConfig(n_in=20, n_rec=20, n_out=1, n_adaptive=8, dt=10.0, tau_m=30, tau_out=30, n_ref=0), seed=0)
    rule = Eprop()
    rule.setup(net, torch.optim.Adam(net.parameters(), lr=2e-2), seed=0)
    losses = [rule.train_step(net, Batch(x, y), PatternObjective()).loss for _ in range(12)]
    assert losses[-1] < 0.5 * losses[0]
    assert sum(losses[-3:]) < sum(losses[:3])
    with pytest.raises(ValueError, match=r"rule 'eprop'.*\(T, B, n_in=20\)"):
        rule.train_step(net, Batch(x[:, 0], y), PatternObjective())


def test_cli_cue_writes_results(tmp_path, one_thread, capsys):
    from spikes.cli import main

    out = tmp_path / "cue.json"
    code = main(["eprop", "cue", "--rules", "eprop-adaptive,bptt", "--dt", "20", "--iterations", "2",
                 "--batch", "4", "--test-batch", "8", "--out", str(out), "--runs", str(tmp_path / "runs"),
                 "--no-progress"])
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["rule"] for r in rows] == ["eprop-adaptive", "bptt"]
    assert all(0.0 <= r["test_error"] <= 1.0 and len(r["loss"]) == 2 and len(r["error"]) == 2 for r in rows)
    for r in rows:                                  # the rows are the trainer's runs, kept under --runs
        summary = json.loads((tmp_path / "runs" / f"cue_alif_{r['rule']}" / "summary.json").read_text())
        assert r["test_error"] == pytest.approx(1.0 - summary["test_accuracy"])
        assert summary["config"]["model"]["n_rec"] == 100 and summary["config"]["model"]["tau_a"] == 2000.0
        assert summary["n_test"] == 8 and summary["steps"] == 2
    assert summary["config"]["rule"]["name"] == "bptt"
    assert json.loads((tmp_path / "runs" / "cue_alif_eprop-adaptive" / "summary.json").read_text())[
        "config"]["rule"] == {"name": "eprop", "feedback": "adaptive", "update_every": 0, "weight_decay": 1e-2}
    table = capsys.readouterr().out
    assert "| alif | eprop-adaptive |" in table and "| alif | bptt |" in table
    with pytest.raises(SystemExit, match="unknown rule"):
        main(["eprop", "cue", "--rules", "hebb"])
    with pytest.raises(SystemExit, match="already holds a run"):
        main(["eprop", "cue", "--rules", "bptt", "--dt", "20", "--iterations", "1", "--batch", "2",
              "--test-batch", "2", "--runs", str(tmp_path / "runs"), "--no-progress"])


def test_spikes_train_reaches_the_cue_task(tmp_path, one_thread):
    """``spikes train --model rsnn --dataset cue``: the paper's 1 ms task, its first batch the cue task's block 0."""
    from spikes.cli import main

    run = tmp_path / "train"
    assert main(["train", "--model", "rsnn", "--dataset", "cue", "--run-dir", str(run), "--max-steps", "1",
                 "--batch-size", "4", "--train-limit", "4", "--test-limit", "4", "--set", "model.n_rec=8",
                 "--set", "model.n_adaptive=4", "--no-progress", "--threads", "1"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dataset"] == "cue" and summary["rule"] == "eprop" and summary["n_train"] == 4
    assert summary["steps"] == 1 and 0.0 <= summary["test_accuracy"] <= 1.0
    ckpt = load_checkpoint(run / CHECKPOINT_FILE)
    assert ckpt["data"]["name"] == "cue" and ckpt["data"]["T"] == 2250 and ckpt["model"]["kwargs"]["n_in"] == 40
