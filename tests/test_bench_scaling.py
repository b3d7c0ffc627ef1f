"""benchmarks/bench_scaling.py: a sweep size runs in a fresh subprocess and prints ratios and peak memory; the
ONM sweep refuses to print a ratio when a peer computes a different network (perturbed weights)."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHES = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_quick_sweep_prints_ratios_and_memory(monkeypatch, capsys):
    bench = _load("bench_scaling")
    monkeypatch.setattr(bench, "SWEEPS", {"a_T": [200]})
    assert bench.main(["--quick", "--only", "a_T"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("[a_T 200]"))
    assert "vs snntorch" in line and "vs norse" in line and "spikes/floor" in line
    # the growth over the imports' peak is a measurement, 0 when the case fits in memory the imports already
    # touched (seen once in a full run): only that it is reported as a size is checked
    assert float(line.split("peak RSS +")[1].split()[0]) >= 0


def test_onm_size_refuses_a_perturbed_peer(monkeypatch):
    sys.path.insert(0, str(BENCHES))
    bench = _load("bench_scaling")
    bg = _load("bench_gpu")
    original = bg.snntorch_run
    monkeypatch.setattr(bg, "snntorch_run", lambda w, b, x: original(w * 1.05, b, x))
    monkeypatch.setattr(bg, "norse_run", lambda w, b, x, *a: (_ for _ in ()).throw(ImportError("skipped in test")))
    with pytest.raises(AssertionError, match="not the same network"):
        bench.run_one("onm", 64, repeats=1)  # the harness at n = 64 (T 500, B 16), spikes vs the perturbed snntorch
    monkeypatch.setattr(bg, "snntorch_run", original)
    result = bench.run_one("onm", 64, repeats=1)  # unperturbed: the same network, a ratio
    assert set(result["ms"]) == {"spikes", "snntorch"} and result["checked"].startswith("first losses equal")
