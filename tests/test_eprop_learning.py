"""Learning trend on tiny cases (e-prop lowers the loss), the training loop, and the ``spikes eprop`` command."""
from __future__ import annotations

import json

import pytest
import torch

from spikes.datasets.tasks import PatternTaskConfig, pattern_task
from spikes.learning.eprop_losses import SequenceMSE
from spikes.learning.eprop_train import Trainer
from spikes.models.rsnn import RSNN, RSNNConfig


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_eprop_lowers_pattern_generation_loss(one_thread):
    x, y = pattern_task(PatternTaskConfig(n_in=20, duration=300, dt=10.0), seed=0)
    net = RSNN(RSNNConfig(n_in=20, n_rec=20, n_out=1, n_adaptive=8, dt=10.0, tau_m=30, tau_out=30, n_ref=0), seed=0)
    trainer = Trainer(net, "eprop-symmetric", lr=2e-2)
    losses = [trainer.train_step(x, SequenceMSE(y))[0] for _ in range(12)]
    assert losses[-1] < 0.5 * losses[0]
    assert sum(losses[-3:]) < sum(losses[:3])


def test_bptt_and_eprop_start_from_the_same_loss(one_thread):
    """Same seed, same first forward pass, whatever the rule (the rules differ only in the update)."""
    x, y = pattern_task(PatternTaskConfig(n_in=10, duration=100, dt=5.0), seed=1)
    first = []
    for rule in ("bptt", "eprop-random"):
        net = RSNN(RSNNConfig(n_in=10, n_rec=12, n_out=1, dt=5.0), seed=2)
        first.append(Trainer(net, rule).train_step(x, SequenceMSE(y))[0])
    assert first[0] == pytest.approx(first[1], rel=1e-5)


def test_cli_cue_writes_results(tmp_path, one_thread):
    from spikes.cli import main

    out = tmp_path / "cue.json"
    code = main(["eprop", "cue", "--rules", "eprop-adaptive,bptt", "--dt", "20", "--iterations", "2",
                 "--batch", "4", "--test-batch", "8", "--out", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["rule"] for r in rows] == ["eprop-adaptive", "bptt"]
    assert all(0.0 <= r["test_error"] <= 1.0 and len(r["loss"]) == 2 for r in rows)
    with pytest.raises(SystemExit, match="unknown rule"):
        main(["eprop", "cue", "--rules", "hebb"])
