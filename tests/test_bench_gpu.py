"""benchmarks/bench_gpu.py (the Open Neuromorphic harness) on the CPU at a small size: the libraries compute the
same network (equal first losses), ratios are printed, and a different network is refused before any ratio."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
SMALL = ["--device", "cpu", "--sizes", "256", "--steps", "40", "--repeats", "1", "--no-compile"]  # compile: ~75 s


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module
    spec.loader.exec_module(module)
    return module


def test_small_run_prints_ratios_of_the_same_network(capsys):
    bench = _bench()
    assert bench.main(SMALL) == 0
    out = capsys.readouterr().out
    losses = {line.split()[0]: float(line.split()[-1]) for line in out.splitlines() if "first loss" in line}
    assert set(losses) == {"spikes", "snntorch", "norse"}
    assert losses["spikes"] > 100  # the layer spikes
    assert losses["snntorch"] == losses["spikes"] and abs(losses["norse"] - losses["spikes"]) <= 1e-4 * losses["spikes"]
    assert "speed-up vs snntorch" in out and "speed-up vs norse" in out
    assert "reference loop" not in out  # spikes ran its kernel


def test_a_different_network_is_refused(monkeypatch, capsys):
    bench = _bench()
    original = bench.snntorch_run
    monkeypatch.setattr(bench, "snntorch_run", lambda w, b, x: original(w * 1.05, b, x))
    with pytest.raises(AssertionError, match="not the same network"):
        bench.main(SMALL + ["--libs", "spikes,snntorch"])
    assert "speed-up" not in capsys.readouterr().out
