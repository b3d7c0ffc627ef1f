"""benchmarks/bench_alignment.py end to end on a smoke setting: its table is the runs' own summaries."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_alignment.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_alignment", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_alignment"] = module          # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_run_tabulates_the_summaries(tmp_path, capsys):
    bench = _bench()
    assert bench.main(["--tasks", "ann_shallow", "--rules", "bptt", "kp", "--seeds", "2", "--quick",
                       "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "results.json").read_text())
    row = out["table"]["ann_shallow"]
    acc = {r: [100 * json.loads((tmp_path / "ann_shallow" / r / f"seed{s}" / "summary.json").read_text())
               ["test_accuracy"] for s in (0, 1)] for r in ("bptt", "kp")}
    assert row["kp"]["acc_mean"] == pytest.approx(sum(acc["kp"]) / 2)
    assert row["kp"]["gap"] == pytest.approx(sum(acc["kp"]) / 2 - sum(acc["bptt"]) / 2)
    assert row["kp"]["angle_wb"] is not None and row["bptt"]["angle_wb"] is None
    summary = json.loads((tmp_path / "ann_shallow" / "kp" / "seed0" / "summary.json").read_text())
    assert summary["config"]["rule"]["alpha"] == 0.05 and summary["config"]["train"]["optimizer"] == "sgd"
    assert (tmp_path / "alignment.png").read_bytes()[:4] == b"\x89PNG"
    assert "| kp |" in capsys.readouterr().out
    # a second invocation reuses the finished runs
    mtime = (tmp_path / "ann_shallow" / "kp" / "seed0" / "summary.json").stat().st_mtime
    assert bench.main(["--tasks", "ann_shallow", "--rules", "kp", "--seeds", "1", "--quick", "--out",
                       str(tmp_path)]) == 0
    assert (tmp_path / "ann_shallow" / "kp" / "seed0" / "summary.json").stat().st_mtime == mtime
