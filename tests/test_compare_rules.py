"""``spikes compare`` across runs of different learning rules: the rule's measurements (angle between W and B)
reach summary.json, the table and the plot."""
import json
import math

import pytest
import torch

from spikes.cli import main
from spikes.reports import SummaryError, comparison_rows, load_summary
from spikes.reports.summary import learning_history, parse_summary
from spikes.training import load_checkpoint


def _train(run_dir, rule):
    assert main(["train", "--model", "mlp", "--rule", rule, "--dataset", "digits", "--set", "model.width=16",
                 "--set", "train.epochs=1", "--set", "train.progress=false", "--run-dir", str(run_dir)]
                + (["--set", "rule.log_every=5"] if rule != "bptt" else [])) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    for rule in ("bptt", "fa", "kp"):
        _train(root / rule, rule)
    return root


def _angle_by_hand(w, b):
    w, b = w.flatten().double(), b.flatten().double()
    return math.degrees(math.acos(float(w @ b / (w.norm() * b.norm()))))


def test_summary_holds_the_angles_of_the_final_weights(runs):
    summary = json.loads((runs / "kp" / "summary.json").read_text())
    ckpt = load_checkpoint(runs / "kp" / "checkpoint.pt")
    feedback = ckpt["rule"]["state"]["feedback"]
    angles = summary["learning"]["angle_wb"]
    assert sorted(angles) == sorted(feedback) == ["0", "2", "4"]
    for layer, b in feedback.items():
        assert angles[layer] == pytest.approx(_angle_by_hand(ckpt["weights"][f"{layer}.weight"], b), abs=1e-6)
    assert set(summary["learning"]["angle_grad"]) == set(feedback)
    assert json.loads((runs / "bptt" / "summary.json").read_text())["learning"] == {}


def test_compare_prints_angles_and_writes_the_plot(runs, tmp_path, capsys):
    plot, page = tmp_path / "rules.png", tmp_path / "rules.html"
    assert main(["compare", *(str(runs / r) for r in ("bptt", "fa", "kp")), "--plot", str(plot),
                 "--html", str(page)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "angle_wb" in line)
    assert "angle_grad" in header
    rows = comparison_rows([load_summary(runs / r) for r in ("bptt", "fa", "kp")])
    kp = json.loads((runs / "kp" / "summary.json").read_text())["learning"]["angle_wb"]
    assert rows[2]["angle_wb"] == pytest.approx(sum(kp.values()) / 3)
    assert rows[0].get("angle_wb") is None
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Learning rules" in page.read_text()


def test_history_is_read_from_the_metrics_log(runs):
    s = load_summary(runs / "fa")
    history = learning_history(s)["angle_wb"]
    logged = [json.loads(line) for line in (runs / "fa" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in logged if "angle_wb/0" in r]
    assert [step for step, _ in history] == [r["step"] for r in logged]
    assert history[0][1] == pytest.approx(sum(logged[0][f"angle_wb/{k}"] for k in "024") / 3)


def test_bad_learning_entry_names_the_key():
    base = {"model": "m", "task": "t", "metric_name": "accuracy", "metric": 0.5, "per_layer": []}
    with pytest.raises(SummaryError, match="learning"):
        parse_summary({**base, "learning": {"angle_wb": 3}}, "x.json")
    with pytest.raises(SummaryError, match=r"learning\['angle_wb'\]\['0'\]"):
        parse_summary({**base, "learning": {"angle_wb": {"0": "wide"}}}, "x.json")
