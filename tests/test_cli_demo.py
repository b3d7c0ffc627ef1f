"""``spikes demo`` prints the test accuracy and a per-layer firing-rate table that match its summary."""
from __future__ import annotations

import argparse
import json

import pytest

from spikes.commands import demo


def test_demo_prints_accuracy_and_rate_table(tmp_path, monkeypatch, capsys):
    # Same code path as `spikes demo`, on the small synthetic set so that it takes a second.
    monkeypatch.setitem(demo.DEMO_CONFIG, "dataset", "synthetic")
    monkeypatch.setitem(demo.DEMO_CONFIG, "model", "mlp_snn")
    monkeypatch.setitem(demo.DEMO_CONFIG, "n_time_bins", 4)
    monkeypatch.setitem(demo.DEMO_CONFIG, "threads", 1)
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--run-dir", str(tmp_path / "run"), "--epochs", "1", "--no-progress"])
    assert demo.run(args) == 0
    out = capsys.readouterr().out

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert f"test accuracy {summary['test_accuracy']:.4f}" in out
    table = [l for l in out.splitlines() if l.startswith("| ")]
    assert table[0].split("|")[1].strip() == "layer"
    rates = {cells[0]: float(cells[3]) for l in table[1:] if (cells := [c.strip() for c in l.split("|")[1:-1]])[3]}
    assert rates == pytest.approx(summary["firing_rates"], rel=1e-3, abs=1e-9)   # printed with 4 significant digits
    assert set(rates) == {"features.2", "features.4", "output"}
