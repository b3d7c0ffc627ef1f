"""benchmarks/bench_scaling.py: a sweep size runs in a fresh subprocess and prints ratios and peak memory; every
sweep refuses to time a size when a peer computes a different network (perturbed weights), and passes the same
network (unperturbed) at tiny sizes; bench_training's builders take sizes and keep today's as defaults."""
import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCHES = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_quick_sweep_prints_ratios_and_memory(monkeypatch, capsys):
    bench = _load("bench_scaling")
    monkeypatch.setattr(bench, "SWEEPS", {"a_T": [60]})
    assert bench.main(["--quick", "--only", "a_T"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("[a_T 60]"))
    assert "vs snntorch" in line and "vs norse" in line and "spikes/floor" in line
    assert "checked: same network" in line
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
    assert set(result["ms"]) == {"spikes", "snntorch"} and result["checked"].startswith("same network")


TINY = {"a": dict(steps=40, batch=4), "b": dict(steps=20, batch=4, n_in=200, hidden=32),
        "c": dict(steps=6, batch=2)}
# (sweep, tiny size): the new sweeps' builders at sizes small enough for a test
NEW_SWEEPS = [("a_N", 24), ("c_channels", 4), ("c_size", 12)]


def _tiny_cases(monkeypatch, bt):
    for case, changes in TINY.items():
        monkeypatch.setitem(bt.CASES, case, dataclasses.replace(bt.CASES[case], **changes))


@pytest.mark.parametrize("sweep,size,peer", [(s, n, "snntorch") for s, n in NEW_SWEEPS] + [("c_size", 12, "norse")])
def test_new_sweeps_refuse_a_perturbed_peer(monkeypatch, sweep, size, peer):
    sys.path.insert(0, str(BENCHES))
    bench = _load("bench_scaling")
    bt = _load("bench_training")
    _tiny_cases(monkeypatch, bt)
    name = f"{peer}_model"
    original = getattr(bt, name)
    # every synaptic layer 1.5x stronger in the peer: more spikes, another loss
    monkeypatch.setattr(bt, name, lambda case, weights, *a, **k: original(
        case, [(w * 1.5, b) for w, b in weights], *a, **k))
    with pytest.raises(AssertionError, match=f"{peer}'s first loss .* not the same network"):
        bench.run_one(sweep, size, repeats=1)


@pytest.mark.parametrize("sweep,size", NEW_SWEEPS)
def test_new_sweeps_pass_the_same_network_and_time_it(monkeypatch, capsys, sweep, size):
    sys.path.insert(0, str(BENCHES))
    bench = _load("bench_scaling")
    bt = _load("bench_training")
    _tiny_cases(monkeypatch, bt)
    case, sizes, _ = bench.case_size(sweep, size)
    swept = {"a_N": sizes.hidden, "c_channels": sizes.channels, "c_size": sizes.input_size}[sweep]
    assert swept == {"a_N": 24, "c_channels": (4, 8), "c_size": 12}[sweep]
    result = bench.run_one(sweep, size, repeats=1)
    assert set(result["ms"]) == {"spikes", "snntorch", "norse", "dense floor"}
    assert all(ms > 0 for ms in result["ms"].values())
    out = capsys.readouterr().out
    losses = out.split("first losses (")[1].split(")")[0]  # 'spikes 0.123456, snntorch ..., norse ...'
    values = [float(part.split()[1]) for part in losses.split(", ")]
    assert len(values) == 3 and max(values) - min(values) <= 1e-4 * abs(values[0])


def test_builders_take_sizes_and_keep_the_defaults():
    bt = _load("bench_training")
    # today's sizes are the defaults
    assert bt.CASES["a"].input_shape("a") == (1000, 64, 40) and bt.CASES["a"].hidden == 100
    assert bt.CASES["b"].input_shape("b") == (100, 32, 2312) and bt.CASES["b"].hidden == 256
    assert bt.CASES["c"].input_shape("c") == (50, 32, 2, 34, 34) and bt.CASES["c"].channels == (16, 32)
    size = dataclasses.replace(bt.CASES["c"], steps=3, batch=2, channels=(3, 5), input_size=10)
    x, target = bt.case_inputs("c", size)
    torch.manual_seed(1)
    model = bt.spikes_models("c", size)
    shapes = [tuple(w.shape) for w, _ in bt.layer_weights("c", model)]
    assert shapes == [(3, 2, 3, 3), (5, 3, 3, 3), (10, 5 * 5 * 5)]
    assert model(x).shape == (3, 2, 10) and target.shape == (2,)
    with pytest.raises(ValueError, match="CaseSize.density"):
        dataclasses.replace(size, density=0.0)
