"""Training loop: same seed -> same weights; a stopped run resumed mid-epoch ends bit-identical; run-dir files."""
from __future__ import annotations

import json

import pytest
import torch

from spikes.training import ConfigError, batch_order, load_checkpoint, resolve_config, train
from spikes.training import flat_config as TrainConfig  # first-release flat keys

TINY = dict(dataset="synthetic", model="mlp_snn", width=8, n_time_bins=3, batch_size=16, train_limit=56,
            test_limit=32, epochs=3, checkpoint_every=0, threads=1, progress=False)   # 4 steps/epoch (last one short)


def _run(tmp_path, name, resume=False, **over):
    run_dir = tmp_path / name
    summary = train(TrainConfig(**{**TINY, **over}), run_dir, resume=resume, log=lambda m: None)
    return run_dir, summary


def _weights(run_dir):
    return load_checkpoint(run_dir / "checkpoint.pt")["weights"]


def _log(run_dir):
    return [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run, shared by the tests below."""
    return _run(tmp_path_factory.mktemp("ref"), "ref")


def test_same_seed_same_weights_other_seed_differs(tmp_path, reference):
    ref_dir, ref_summary = reference
    torch.rand(10)                                    # global RNG state differs from the reference run's
    run_dir, summary = _run(tmp_path, "again")
    assert _equal(_weights(run_dir), _weights(ref_dir))
    assert [r["loss"] for r in _log(run_dir)] == [r["loss"] for r in _log(ref_dir)]
    assert summary["test_accuracy"] == ref_summary["test_accuracy"]
    other_dir, _ = _run(tmp_path, "seed1", seed=1)
    assert not _equal(_weights(other_dir), _weights(ref_dir))


def test_stop_mid_epoch_then_resume_matches_uninterrupted(tmp_path, reference):
    ref_dir, _ = reference
    run_dir, partial = _run(tmp_path, "run", max_steps=6)
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["position"] == {"epoch": 1, "batch": 2, "step": 6, "stopped": False}     # mid-epoch: 2 of 4 batches done
    assert not partial["completed"] and partial["steps"] == 6
    with open(run_dir / "metrics.jsonl", "a") as f:                     # a killed run may log past its checkpoint
        f.write(json.dumps({"step": 7, "loss": -1.0}) + "\n" + '{"step": 8, "lo')
    (run_dir / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")   # ... and leave a temp file
    _, summary = _run(tmp_path, "run", resume=True)
    assert summary["completed"] and summary["steps"] == 12
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "config.toml", "metrics.jsonl", "summary.json"]
    assert _equal(_weights(run_dir), _weights(ref_dir))
    log, ref_log = _log(run_dir), _log(ref_dir)
    assert [r["step"] for r in log] == list(range(1, 13))
    assert [r["loss"] for r in log] == [r["loss"] for r in ref_log]


def test_periodic_checkpoints_resume_from_each(tmp_path, reference):
    ref_dir, _ = reference
    run_dir, _ = _run(tmp_path, "ck", checkpoint_every=5, max_steps=5)   # stops right on a periodic checkpoint
    assert load_checkpoint(run_dir / "checkpoint.pt")["position"] == {"epoch": 1, "batch": 1, "step": 5,
                                                                  "stopped": False}
    _run(tmp_path, "ck", resume=True, checkpoint_every=5)
    assert _equal(_weights(run_dir), _weights(ref_dir))


def test_run_dir_files(reference):
    run_dir, summary = reference
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "config.toml", "metrics.jsonl", "summary.json"]
    assert resolve_config(run_dir / "config.toml") == TrainConfig(**TINY)
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["test_accuracy"] == summary["test_accuracy"] and on_disk["steps"] == 12
    assert set(on_disk["firing_rates"]) == {"features.2", "features.4", "output"}
    assert all(0.0 <= r <= 1.0 for r in on_disk["firing_rates"].values())
    rows = {r["layer"]: r for r in on_disk["layers"]}
    assert rows["features.1"]["kind"] == "Linear" and rows["features.1"]["synops"] > 0
    assert on_disk["n_test"] == 32
    log = _log(run_dir)
    assert {"step", "epoch", "loss", "accuracy", "firing_rate", "lr"} <= set(log[0])
    assert log[-1]["lr"] == pytest.approx(0.0, abs=1e-12)            # cosine schedule reaches 0 at the last step


def test_refuses_to_overwrite_or_change_fixed_keys(tmp_path, reference):
    run_dir, _ = _run(tmp_path, "r", max_steps=2)
    with pytest.raises(FileExistsError, match="--resume"):
        _run(tmp_path, "r")
    with pytest.raises(ConfigError, match="'train.seed'"):
        _run(tmp_path, "r", resume=True, seed=3)


def test_batch_order_is_a_function_of_seed_and_epoch():
    a = batch_order(10, 4, seed=0, epoch=1)
    assert [len(b) for b in a] == [4, 4, 2]
    assert sorted(torch.cat(a).tolist()) == list(range(10))
    assert all(torch.equal(x, y) for x, y in zip(a, batch_order(10, 4, seed=0, epoch=1)))
    assert not torch.equal(torch.cat(a), torch.cat(batch_order(10, 4, seed=0, epoch=2)))


def test_process_settings_restored(tmp_path):
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(False)
    _run(tmp_path, "s", max_steps=1, threads=1 if threads > 1 else 2)
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()


def test_spike_penalty_lowers_firing_rate(tmp_path):
    _, dense = _run(tmp_path, "dense", gain=5.0)
    _, sparse = _run(tmp_path, "sparse", gain=5.0, spike_penalty=5.0)
    assert dense["mean_firing_rate"] > 0.02
    assert sparse["mean_firing_rate"] < 0.75 * dense["mean_firing_rate"]


def test_best_epoch_keeping_resumes_exactly(tmp_path):
    """keep_best's best-so-far weights and patience count are saved in the checkpoint: a run stopped after two
    epochs (max_steps) and resumed ends with the weights, validation history and early stop of an uninterrupted run."""
    keys = dict(model="gt_network", dataset="wine", epochs=6, batch_size=32, keep_best=True, patience=2,
                checkpoint_every=0, threads=1, progress=False)
    tables = {"model": {"iterations": 8, "eta1": 5e-3, "eta2": 5e-2}, "rule": {}, "data": {}, "train": {}}
    ref = train(resolve_config(None, tables, keys), tmp_path / "ref", log=lambda m: None)
    steps_per_epoch = 4                                            # 101 training samples / 32
    train(resolve_config(None, tables, {**keys, "max_steps": 2 * steps_per_epoch}), tmp_path / "cut", log=lambda m: None)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["callbacks"]["KeepBest"]["history"]
    got = train(resolve_config(None, tables, keys), tmp_path / "cut", resume=True, log=lambda m: None)
    assert got["val_history"] == ref["val_history"] and got["epochs_done"] == ref["epochs_done"]
    assert got["stopped_early"] == ref["stopped_early"]
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a["q0"], b["q0"]))


def test_first_release_checkpoint_upgrades_and_resumes(tmp_path):
    """A first-release ``spikes train`` checkpoint (version 1: flat config, ``model`` state dict) is refused by the
    trainer with the upgrade command; upgraded, it resumes and ends as an uninterrupted run of the new format."""
    from spikes.cli import main

    keys = {**TINY, "scheduler": "constant", "epochs": 1}
    first, _ = _run(tmp_path, "first", **keys)
    new = load_checkpoint(first / "checkpoint.pt")
    flat = {"model": "mlp_snn", "neuron": "lif", "width": 8, "readout": "count", "gain": 2.0, "dataset": "synthetic",
            "n_time_bins": 3, "train_limit": 56, "test_limit": 32, "spike_penalty": 0.0, "epochs": 1, "max_steps": 0,
            "batch_size": 16, "lr": 2e-3, "weight_decay": 0.0, "optimizer": "adam", "scheduler": "constant", "seed": 0,
            "checkpoint_every": 0, "threads": 1, "deterministic": True, "progress": False}
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    torch.save({"version": 1, "config": flat, "model": new["weights"], "optimizer": new["optimizer"],
                "scheduler": new["scheduler"], "rng": new["rng"], "position": {k: new["position"][k] for k in
                                                                              ("epoch", "batch", "step")},
                "input_shape": new["model"]["input_shape"]}, old_dir / "checkpoint.pt")
    with pytest.raises(ValueError, match="spikes checkpoint upgrade"):
        _run(tmp_path, "old", resume=True, **{**keys, "epochs": 2})
    assert main(["checkpoint", "upgrade", str(old_dir / "checkpoint.pt"), "--in-place"]) == 0
    _run(tmp_path, "old", resume=True, **{**keys, "epochs": 2})
    straight, _ = _run(tmp_path, "straight", **{**keys, "epochs": 2})
    assert _equal(_weights(old_dir), _weights(straight))


def test_log_synops_writes_the_probe_count_of_each_step(tmp_path):
    """With train.log_synops every step's metrics line has the batch's synaptic operations per sample; they equal a
    SpikeProbe run by hand on the same batch with the weights of that step (the last step: the final weights)."""
    from spikes.metrics import SpikeProbe
    from spikes.models.registry import kind_of
    from spikes.training.data import time_first
    from spikes.training.loop import open_split

    run_dir, _ = _run(tmp_path, "syn", log_synops=True, epochs=1, max_steps=1)
    (line,) = _log(run_dir)
    assert line["synops_per_sample"] > 0
    plain, _ = _run(tmp_path, "plain", epochs=1, max_steps=1)
    assert "synops_per_sample" not in _log(plain)[0]
    # by hand: the first batch through the initial weights (the logged forward ran before the step's update)
    config = TrainConfig(**{**TINY, "epochs": 1})
    train_set = open_split(config, "train")
    kwargs = {**kind_of("mlp_snn").resolve(config.model_options, train_set), "seed": 0}
    model = kind_of("mlp_snn").construct(kwargs)
    x, _ = train_set.batch(batch_order(len(train_set), 16, 0, 0)[0])
    with torch.no_grad(), SpikeProbe(model) as probe:
        model(time_first(x))
    assert line["synops_per_sample"] == pytest.approx(probe.total_synops() / probe.samples, rel=1e-6)
