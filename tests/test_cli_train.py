"""``spikes`` CLI: subcommand listing, config errors, and SIGKILL + --resume ending bit-identical."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from spikes.training import load_checkpoint, train
from spikes.training import flat_config as TrainConfig  # first-release flat keys

REPO = Path(__file__).resolve().parents[1]
SPIKES = [sys.executable, "-m", "spikes.cli"]
# 12 steps/epoch x 6 epochs; a checkpoint every 4 steps (so mid-epoch) and at every epoch end.
KILL_CONFIG = dict(dataset="synthetic", model="mlp_snn", width=8, n_time_bins=3, batch_size=8, train_limit=96,
                   test_limit=16, epochs=6, checkpoint_every=4, threads=1)


def _spikes(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*SPIKES, *args], capture_output=True, text=True, cwd=REPO, timeout=300, **kw)


def test_help_lists_subcommands():
    out = _spikes("--help")
    assert out.returncode == 0
    assert "train" in out.stdout and "demo" in out.stdout
    flags = _spikes("train", "--help").stdout
    assert "--resume" in flags and "--batch-size" in flags and "--config" in flags


def test_config_error_names_key_and_file(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('dataset = "synthetic"\nepochs = -2\n')
    out = _spikes("train", "--config", str(cfg), "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 2
    assert str(cfg) in out.stderr and "'train.epochs'" in out.stderr and "out of range" in out.stderr
    out = _spikes("train", "--config", str(cfg), "--epochs", "1", "--bogus", "3")
    assert out.returncode == 2 and "--bogus" in out.stderr                  # argparse rejects unknown flags
    assert not (tmp_path / "run").exists()


def _flags(cfg: dict) -> list[str]:
    return [a for k, v in cfg.items() for a in (f"--{k.replace('_', '-')}", str(v))]


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [*SPIKES, "train", "--run-dir", str(run_dir), "--no-progress", *_flags(KILL_CONFIG)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "checkpoint.pt").exists():
            assert proc.poll() is None, f"spikes train exited early: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "summary.json").exists(), "the run finished before it was killed: test proves nothing"
    killed_at = load_checkpoint(run_dir / "checkpoint.pt")["position"]
    assert 0 < killed_at["step"] < 72

    out = subprocess.run([*SPIKES, "train", "--run-dir", str(run_dir), "--resume", "--no-progress"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "resumed" in out.stderr
    steps = [int(l.split('"step": ')[1].split(",")[0]) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 73))

    ref_dir = tmp_path / "uninterrupted"
    train(TrainConfig(**KILL_CONFIG, progress=False), ref_dir, log=lambda m: None)
    resumed, ref = load_checkpoint(run_dir / "checkpoint.pt")["weights"], load_checkpoint(ref_dir / "checkpoint.pt")["weights"]
    assert resumed.keys() == ref.keys()
    for k in ref:
        assert torch.equal(resumed[k], ref[k]), k
