"""Networks trained without weight transport deploy like backprop-trained ones: the checkpoint rebuilds the trained
network (the feedback matrices stay in the rule's state, not in the model), sim runs it, and lava-fixed is
bit-exact with sim."""
import numpy as np
import pytest
import torch

from spikes.cli import main
from spikes.metrics import SpikeProbe
from spikes.pipeline.checkpoints import deploy, open_checkpoint
from spikes.pipeline import checkpoints
from spikes.training.checkpoint import load_checkpoint
from spikes.training.config import resolve_config
from spikes.training.loop import train

RULES = ("bptt", "fa", "ss", "kp", "wm", "ia", "sa", "dfa")


def _train(run_dir, rule, model="mlp_snn"):
    tables = {"model": {"kind": model, "width": 8, "neuron": "plif", "gain": 6.0}, "rule": {"name": rule},
              "data": {"dataset": "synthetic", "n_time_bins": 4, "train_limit": 48, "test_limit": 8},
              "train": {"epochs": 1, "batch_size": 16, "checkpoint_every": 0, "threads": 1, "progress": False}}
    train(resolve_config(None, tables), run_dir, log=lambda m: None)
    return run_dir / "checkpoint.pt"


@pytest.mark.parametrize("rule", RULES)
def test_rule_trained_checkpoint_runs_on_sim(tmp_path, capsys, rule):
    ckpt = _train(tmp_path / rule, rule)
    raw = load_checkpoint(ckpt)
    loaded = open_checkpoint(ckpt)
    # the trained weights, and nothing of the rule, make up the model
    assert loaded.model.state_dict().keys() == raw["weights"].keys()
    assert all(torch.equal(v, raw["weights"][k]) for k, v in loaded.model.state_dict().items())
    if rule != "bptt":
        assert raw["rule"]["name"] == rule and raw["rule"]["state"]
    x, y = checkpoints.test_samples(loaded, 8)
    sim = deploy(loaded, x, y, ("sim",))["sim"]
    with torch.no_grad(), SpikeProbe(loaded.model) as probe:
        loaded.model(torch.from_numpy(x))                       # time first, as the deployers take it
    torch_rows = {r["layer"]: r for r in probe.summary_rows() if r.get("firing_rate") is not None}
    first = next(r for r in sim.per_layer if r.get("firing_rate") is not None)
    # the first population sees torch's input current up to weight quantisation
    assert first["firing_rate"] == pytest.approx(torch_rows[first["layer"]]["firing_rate"], abs=0.05)
    assert main(["run", str(ckpt), "--backend", "sim", "--samples", "4"]) == 0
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.lava
@pytest.mark.parametrize("rule", ["kp", "dfa"])
def test_rule_trained_conv_snn_is_bit_exact_on_lava_fixed(tmp_path, rule):
    pytest.importorskip("lava")
    loaded = open_checkpoint(_train(tmp_path / rule, rule, model="conv_snn"))
    x, y = checkpoints.test_samples(loaded, 2)
    res = deploy(loaded, x, y, ("sim", "lava-fixed"))
    assert res["sim"].per_layer == res["lava-fixed"].per_layer
    assert res["sim"].metric == res["lava-fixed"].metric
    assert np.isfinite(res["sim"].metric)
