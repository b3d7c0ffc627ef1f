"""The ``Integrator`` population kind (a non-spiking readout): hand-computed fixed-point steps, the torch
float reference against ``sim-float`` and ``lava-float``, ``sim`` against ``lava-fixed`` bit for bit,
quantisation error, serialisation and the chip-fit note."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from spikes.deploy.backends import run
from spikes.deploy.chipfit import chip_fit
from spikes.graph import Affine, Graph, Input, Integrator, Neurons, Output
from spikes.deploy.network import lower
from spikes.deploy.populations import kind_of
from spikes.deploy.populations.integrator import integrator_fixed_step
from spikes.deploy.quantize import quantize
from spikes.deploy.serialize import load_qnetwork, save_qnetwork
from spikes.deploy.sim import simulate
from spikes.neurons.dynamics import NeuronParameters

T = 25


def readout_graph(seed: int, alpha: float = 0.9, skip: bool = False) -> Graph:
    """input -> fc1 -> LIF -> fc2 (+bias) -> Integrator [+ input -> skip (+bias) -> Integrator]."""
    rng = np.random.default_rng(seed)
    p = NeuronParameters(alpha=0.85, v_th=1.0, reset="zero")
    nodes = {"input": Input((12,)), "fc1": Affine(rng.normal(0, 0.9, (20, 12))), "lif": Neurons((20,), p),
             "fc2": Affine(rng.normal(0, 0.5, (5, 20)), rng.normal(0, 0.2, 5)),
             "readout": Integrator((5,), alpha=alpha, bias=rng.normal(0, 0.1, 5)), "output": Output((5,))}
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "readout"), ("readout", "output")]
    if skip:
        nodes["skip"] = Affine(rng.normal(0, 0.3, (5, 12)), rng.normal(0, 0.1, 5))
        edges += [("input", "skip"), ("skip", "readout")]
    return Graph(nodes, edges)


def spikes_in(seed: int, batch: int = 3) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, batch, 12)) < 0.3).astype(np.float64)


def test_fixed_step_by_hand():
    """v = trunc(v (4096 - dv) / 4096) + (a << 6) + bias from the onset step, saturating at 2**23 - 1."""
    v = np.zeros(2, np.int64)
    bias = np.array([10, -10], np.int64)
    counts = np.zeros((2, 2), np.int64)
    out = [integrator_fixed_step(v, np.array([a, -a]), 1024, bias, t, 1, counts).copy() for t, a in
           enumerate([3, 0, 1])]
    # t0: 192 (bias off); t1: 192*3/4 = 144 + 10 = 154; t2: trunc(154*0.75) = 115 + 64 + 10 = 189
    assert [o[0] for o in out] == [192, 154, 189] and [o[1] for o in out] == [-192, -154, -189]
    big = np.array([2**23 - 100], np.int64)
    integrator_fixed_step(big, np.array([100]), 0, np.zeros(1, np.int64), 0, 0, counts[:1])
    assert big[0] == 2**23 - 1 and counts[0, 1] == 1


def test_integrator_validation():
    with pytest.raises(ValueError, match="alpha"):
        Integrator((3,), alpha=1.5)
    with pytest.raises(ValueError, match="bias must be a scalar or have 3 entries"):
        Integrator((3,), bias=np.zeros(4))


@pytest.mark.parametrize("alpha,skip", [(0.9, False), (0.0, True), (1.0, False)])
def test_sim_float_matches_torch_graph(alpha, skip):
    """With the bias switched on at the readout's latency, sim-float (aligned) equals torch's timing exactly."""
    g = readout_graph(1, alpha, skip)
    x = spikes_in(2)
    ref = run(g, x, backend="torch")["readout"]["values"]
    net = lower(g)
    out = run(net, np.concatenate([x, np.zeros((net.populations["readout"].latency, *x.shape[1:]))]),
              backend="sim-float", align=True)["readout"]["values"][:T]
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_fixed_point_readout_is_close_to_float():
    """The decoded fixed-point readout against the float readout of the same (fixed-point) spikes."""
    g = readout_graph(3)
    net = lower(g)
    q = quantize(net)
    x = spikes_in(4, batch=8)
    xp = np.concatenate([x, np.zeros((net.populations["readout"].latency, *x.shape[1:]))])
    out = run(q, xp, backend="sim", align=True)
    fixed = out["readout"]["values"][:T]
    s = torch.as_tensor(out["lif"]["spikes"][:T].astype(np.float64))
    fc2, ro = g.nodes["fc2"], g.nodes["readout"]
    y, ref = torch.zeros(8, 5, dtype=torch.float64), []
    for t in range(T):
        y = ro.alpha * y + fc2.apply(s[t]) + torch.as_tensor(ro.bias_vector())
        ref.append(y)
    ref = torch.stack(ref).numpy()
    decoded = q.populations["readout"].decode(fixed)
    assert fixed.dtype == np.int64
    err = np.abs(decoded - ref).max() / np.abs(ref).max()
    assert err < 0.01, err
    assert kind_of(q.populations["readout"]).name == "integrator"


@pytest.mark.slow
@pytest.mark.parametrize("skip", [False, True])
def test_sim_bit_exact_with_lava_fixed_and_lava_float_close(skip):
    g = readout_graph(5, 0.8, skip)
    net = lower(g)
    q = quantize(net)
    x = spikes_in(6, batch=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lava = run(q, x, backend="lava-fixed")
        lava_f = run(net, x, backend="lava-float")
    sim = run(q, x, backend="sim")
    sim_f = run(net, x, backend="sim-float")
    assert np.array_equal(sim["readout"]["values"], lava["readout"]["values"])
    assert np.array_equal(sim["readout"]["v"], lava["readout"]["v"].astype(np.int64))
    assert np.array_equal(sim["lif"]["spikes"], lava["lif"]["spikes"])
    assert np.abs(sim["readout"]["values"]).max() > 0
    np.testing.assert_allclose(lava_f["readout"]["values"], sim_f["readout"]["values"], rtol=1e-9, atol=1e-9)


def test_serialize_round_trip_keeps_the_integrator(tmp_path):
    q = quantize(lower(readout_graph(7)))
    save_qnetwork(q, tmp_path / "net.npz")
    back = load_qnetwork(tmp_path / "net.npz")
    a, b = q.populations["readout"], back.populations["readout"]
    assert type(b) is type(a) and (a.dv, a.bias_exp, a.onset, a.scale) == (b.dv, b.bias_exp, b.onset, b.scale)
    assert np.array_equal(a.bias_mant, b.bias_mant)
    x = spikes_in(8)
    assert np.array_equal(simulate(q, {"input": x})["readout"]["values"], simulate(back, {"input": x})["readout"]["values"])


def test_chip_fit_notes_the_custom_kind():
    fit = chip_fit(lower(readout_graph(9)))
    assert fit.ok
    assert any("'readout'" in n and "integrator" in n and "microcode" in n for n in fit.notes)
    assert "note:" in fit.format()


def test_graph_forward_returns_potentials_for_the_integrator():
    g = readout_graph(10, alpha=0.5)
    x = torch.as_tensor(spikes_in(11))
    out = g.forward(x)
    s = out["lif"]
    fc2 = g.nodes["fc2"]
    y = torch.zeros(3, 5, dtype=torch.float64)
    for t in range(T):   # by hand: y = 0.5 y + W s + b + bias
        y = 0.5 * y + fc2.apply(s[t]) + torch.as_tensor(g.nodes["readout"].bias_vector())
        torch.testing.assert_close(out["readout"][t], y)
