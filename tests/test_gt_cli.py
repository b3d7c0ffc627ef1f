"""`spikes gt`: trains with the one trainer on a real scikit-learn dataset, prints the table, writes the JSON report
atomically, keeps the run directories under --out."""
from __future__ import annotations

import json

import pytest
import torch

from spikes.cli import main
from spikes.datasets.tabular import load_split
from spikes.models.gt_network import evaluate
from spikes.training import load_model


def test_gt_command_writes_report(tmp_path, capsys):
    report = tmp_path / "sub" / "gt.json"
    code = main(["gt", "--dataset", "wine", "--epochs", "2", "--seed", "1", "--architecture", "network3",
                 "--iterations", "40", "--quiet", "--report", str(report), "--out", str(tmp_path / "runs")])
    assert code == 0
    out = capsys.readouterr().out
    assert "logistic regression" in out and "GT network3" in out
    data = json.loads(report.read_text())
    run = data["runs"][0]
    assert data["dataset"] == "wine" and run["architecture"] == "network3" and run["seed"] == 1
    assert 0.0 <= run["accuracy"] <= 1.0 and 0.0 < run["energy"] < 1.0
    assert len(run["train_spikes_per_sample"]) == 2 and 0.9 < data["logistic_regression_mean"] <= 1.0
    assert len(run["val_accuracy"]) == 2 and run["val_accuracy"][run["best_epoch"]] == max(run["val_accuracy"])
    assert [p.name for p in report.parent.iterdir()] == ["gt.json"]  # no temporary file left
    # the run directory is the trainer's; its checkpoint holds the network the report measured
    run_dir = tmp_path / "runs" / "wine_network3_seed1"
    assert run["run_dir"] == str(run_dir)
    assert {p.name for p in run_dir.iterdir()} >= {"config.toml", "checkpoint.pt", "metrics.jsonl", "summary.json"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rule"] == "gt" and summary["train_spikes_per_sample"] == run["train_spikes_per_sample"]
    net, _, _ = load_model(run_dir / "checkpoint.pt")
    split = load_split("wine", seed=1)
    torch.set_num_threads(1)
    assert evaluate(net, split.x_test, split.y_test) == {k: run[k] for k in ("accuracy", "energy")}
    with pytest.raises(SystemExit, match="already holds a run"):
        main(["gt", "--epochs", "1", "--seed", "1", "--architecture", "network3", "--iterations", "5", "--quiet",
              "--out", str(tmp_path / "runs")])
    with pytest.raises(SystemExit, match="--eta needs 2 learning rate"):
        main(["gt", "--epochs", "1", "--architecture", "network2", "--eta", "1e-3", "--quiet"])
