"""Data-parallel training (spikes.training.distributed): 2 processes with gloo train the weights 1 process trains,
step by step; a rank killed mid-run is resumed to the weights of an uninterrupted run; rules that cannot be
data-parallel are refused by name."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from spikes.options import ConfigError
from spikes.training import load_checkpoint, resolve_config, train
from spikes.training.distributed import World

HERE = Path(__file__).resolve().parent
WORKER = HERE / "distributed_worker.py"
# 41 samples in batches of 10: four batches split 5/5 and a last one of 1 sample (rank 1 runs a stand-in, weight 0)
TINY = dict(dataset="synthetic", model="mlp_snn", width=8, n_time_bins=3, batch_size=10, train_limit=41,
            test_limit=24, epochs=2, checkpoint_every=2, threads=1, progress=False, scheduler="cosine")
RULE = {"name": "bptt", "grad_clip": 0.5}     # clipping must act on the averaged gradient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path: Path, name: str, spec: dict, nproc: int = 2) -> list[subprocess.Popen]:
    spec_file = tmp_path / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    port = _free_port()
    procs = []
    for rank in range(nproc):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(nproc),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
               "SPIKES_DIST_BACKEND": "gloo"}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(spec_file)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    return procs


def _wait(procs: list[subprocess.Popen], timeout: float = 90) -> list[int]:
    codes = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        if p.returncode != 0:
            print(out.decode()[-3000:])
        codes.append(p.returncode)
    return codes


class Record:
    def __init__(self):
        self.steps = []

    def on_train_start(self, state): ...
    def on_step_start(self, state): ...
    def on_epoch_end(self, state): ...
    def on_train_end(self, state): ...
    def state_dict(self): return {}
    def load_state_dict(self, state): ...

    def on_step_end(self, state, out):
        self.steps.append({k: v.detach().clone() for k, v in state.model.state_dict().items()})


def _max_rel(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12)) for k in b)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: one process, the same global batches (with gradient clipping, which must see the averaged
    gradient)."""
    tmp = tmp_path_factory.mktemp("one")
    rec = Record()
    summary = train(_config(), tmp / "run", log=lambda m: None, callbacks=[rec])
    return rec.steps, summary, tmp / "run"


def _config():
    return resolve_config(None, {"rule": RULE}, TINY)


def test_two_processes_train_the_one_process_weights_step_by_step(tmp_path, one_process):
    ref_steps, ref_summary, ref_dir = one_process
    spec = {"config": TINY, "rule": RULE, "run_dir": str(tmp_path / "ddp"), "record": str(tmp_path / "steps.pt")}
    assert _wait(_launch(tmp_path, "ddp", spec)) == [0, 0]
    steps = torch.load(tmp_path / "steps.pt")
    assert len(steps) == len(ref_steps) == 10
    for k, (mine, ref) in enumerate(zip(steps, ref_steps)):
        assert _max_rel(mine, ref) < 1e-5, f"step {k + 1}"
    assert _max_rel(steps[-1], ref_steps[0]) > 1e-2          # the weights did move
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["test_accuracy"] == pytest.approx(ref_summary["test_accuracy"])
    assert summary["n_test"] == ref_summary["n_test"] and summary["steps"] == 10
    assert summary["mean_firing_rate"] == pytest.approx(ref_summary["mean_firing_rate"], rel=1e-5)
    log = [json.loads(l) for l in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    ref_log = [json.loads(l) for l in (ref_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 11))     # rank 0 alone writes the log
    for mine, ref in zip(log, ref_log):                       # step metrics are the global batch's
        assert mine["loss"] == pytest.approx(ref["loss"], rel=1e-5)
        assert mine["accuracy"] == pytest.approx(ref["accuracy"])
        assert mine["firing_rate"] == pytest.approx(ref["firing_rate"], rel=1e-5)


def test_a_killed_rank_resumes_to_the_uninterrupted_weights(tmp_path, one_process):
    ref_steps, _, one_dir = one_process
    run_dir = tmp_path / "killed"
    procs = _launch(tmp_path, "kill", {"config": TINY, "rule": RULE, "run_dir": str(run_dir),
                                       "kill_rank": 1, "kill_step": 7})
    assert procs[1].wait(timeout=90) == -signal.SIGKILL
    time.sleep(0.5)
    if procs[0].poll() is None:          # what torchrun's agent does when a worker dies: stop the others
        procs[0].kill()
    procs[0].wait(timeout=30)
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["position"]["step"] == 6                      # the last checkpoint before the kill
    # resume with plain torchrun running the command line (the run's config.toml holds the tables)
    done = _cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "spikes", "train",
                 "--resume", "--run-dir", str(run_dir), "--no-progress"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed" in done.stderr and "at step 6" in done.stderr and done.stdout.count("test accuracy") == 1
    final = load_checkpoint(run_dir / "checkpoint.pt")["weights"]
    assert _max_rel(final, ref_steps[-1]) < 1e-5
    log = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 11))     # the killed run's lines up to step 6, then 7..10
    ref_log = [json.loads(l) for l in (one_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in ref_log], rel=1e-5)


def test_rules_that_are_not_data_parallel_are_refused_by_name(tmp_path, monkeypatch):
    import spikes.training.loop as loop
    monkeypatch.setattr(loop.distributed, "current", lambda: World(0, 2))      # rank 0 of 2, no peer needed:
    monkeypatch.setattr(loop.distributed, "broadcast_object", lambda obj, world: obj)   # the refusal comes first
    config = resolve_config(None, {"rule": {"name": "wm"}}, {**TINY, "max_steps": 1})
    with pytest.raises(ConfigError, match="rule.name 'wm' cannot train on 2 processes"):
        train(config, tmp_path / "wm", log=lambda m: None)


def test_shards_are_distributed_sampler_strides():
    idx = torch.arange(7)
    assert [World(r, 3).shard(idx)[0].tolist() for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert [World(r, 3).shard(idx)[1] for r in range(3)] == [3 / 7, 2 / 7, 2 / 7]
    stand_in, weight = World(1, 2).shard(torch.tensor([5]))      # nothing left for rank 1: a weight-0 stand-in
    assert stand_in.tolist() == [5] and weight == 0.0


CLI_FLAGS = ["--dataset", "synthetic", "--model", "mlp_snn", "--width", "8", "--n-time-bins", "3", "--batch-size",
             "10", "--train-limit", "41", "--test-limit", "24", "--epochs", "1", "--threads", "1", "--no-progress"]


def _cli_reference(tmp_path: Path) -> dict:
    from spikes.cli import main
    assert main(["train", *CLI_FLAGS, "--run-dir", str(tmp_path / "one")]) == 0
    return load_checkpoint(tmp_path / "one" / "checkpoint.pt")["weights"]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SPIKES_DIST_BACKEND": "gloo"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_spikes_train_nproc_2_trains_the_one_process_weights(tmp_path):
    done = _cli(["-m", "spikes", "train", "--nproc", "2", *CLI_FLAGS, "--run-dir", str(tmp_path / "two")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "steps 5" in done.stdout and done.stdout.count("test accuracy") == 1      # rank 0 reports
    assert _max_rel(load_checkpoint(tmp_path / "two" / "checkpoint.pt")["weights"], _cli_reference(tmp_path)) < 1e-5


def test_spikes_train_nproc_refuses_a_rule_that_is_not_data_parallel(tmp_path, capsys):
    from spikes.cli import main
    assert main(["train", "--nproc", "2", "--rule", "wm", *CLI_FLAGS, "--run-dir", str(tmp_path / "wm")]) == 2
    assert "rule.name 'wm' cannot train on 2 processes" in capsys.readouterr().err
    assert not (tmp_path / "wm").exists()                     # refused before any process starts
