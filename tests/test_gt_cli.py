"""`spikes gt`: runs on a real scikit-learn dataset, prints the table, writes the JSON report atomically."""
from __future__ import annotations

import json

from spikes.cli import main


def test_gt_command_writes_report(tmp_path, capsys):
    report = tmp_path / "sub" / "gt.json"
    code = main(["gt", "--dataset", "wine", "--epochs", "2", "--seed", "1", "--architecture", "network3",
                 "--iterations", "40", "--quiet", "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert "logistic regression" in out and "GT network3" in out
    data = json.loads(report.read_text())
    run = data["runs"][0]
    assert data["dataset"] == "wine" and run["architecture"] == "network3"
    assert 0.0 <= run["accuracy"] <= 1.0 and 0.0 < run["energy"] < 1.0
    assert len(run["train_spikes_per_sample"]) == 2 and 0.9 < data["logistic_regression_mean"] <= 1.0
    assert [p.name for p in report.parent.iterdir()] == ["gt.json"]  # no temporary file left
