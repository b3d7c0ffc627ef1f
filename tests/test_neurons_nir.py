"""``NeuronParameters.nir_parameters(dt)`` against a forward-Euler integration of NIR's ODEs (nir 1.0 docstrings).

LIF:     tau dv/dt = (v_leak - v) + r I
IF:      dv/dt = r I
CubaLIF: tau_syn dI/dt = -I + w_in x;   tau_mem dv/dt = (v_leak - v) + r I     (I updated first, then v)
spike when v > v_threshold, then v = v_reset (0: reset="zero").
"""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from spikes.neurons import NeuronParameters, neuron_step

DT = 1e-3


def euler(node, x: np.ndarray, dt: float = DT):
    v = np.zeros(x.shape[1])
    cur = np.zeros(x.shape[1])
    spikes, vs = [], []
    for x_t in x:
        if isinstance(node, nir.CubaLIF):
            cur = cur + dt / node.tau_syn * (-cur + node.w_in * x_t)
            v = v + dt / node.tau_mem * ((node.v_leak - v) + node.r * cur)
        elif isinstance(node, nir.LIF):
            v = v + dt / node.tau * ((node.v_leak - v) + node.r * x_t)
        else:
            v = v + dt * node.r * x_t
        s = v > node.v_threshold
        v = np.where(s, node.v_reset, v)
        spikes.append(s.astype(float))
        vs.append(v.copy())
    return np.stack(spikes), np.stack(vs)


def to_node(q: dict, n: int):
    def arr(value):
        return np.full(n, value, dtype=np.float64)

    reset = arr(0.0)
    if q["kind"] == "IF":
        return nir.IF(r=arr(q["r"]), v_threshold=arr(q["v_threshold"]), v_reset=reset)
    if q["kind"] == "LIF":
        return nir.LIF(tau=arr(q["tau"]), r=arr(q["r"]), v_leak=arr(q["v_leak"]), v_threshold=arr(q["v_threshold"]),
                       v_reset=reset)
    return nir.CubaLIF(tau_syn=arr(q["tau_syn"]), tau_mem=arr(q["tau_mem"]), r=arr(q["r"]), v_leak=arr(q["v_leak"]),
                       v_threshold=arr(q["v_threshold"]), v_reset=reset, w_in=arr(q["w_in"]))


@pytest.mark.parametrize("kw,kind", [(dict(alpha=0.875), "LIF"), (dict(alpha=1.0), "IF"),
                                     (dict(alpha=0.9, alpha_syn=0.8), "CubaLIF")])
def test_nir_mapping_matches_euler_integration(kw, kind):
    rng = np.random.default_rng(1)
    p = NeuronParameters(reset="zero", v_th=1.0, **kw)
    q = p.nir_parameters(DT)
    assert q["kind"] == kind
    x = rng.uniform(0.0, 0.5, size=(60, 5))
    ref_s, ref_v = euler(to_node(q, 5), x)

    state, spikes, vs = None, [], []
    for x_t in torch.from_numpy(x):
        s, state = neuron_step(x_t, state, p)
        spikes.append(s.numpy())
        vs.append(state.v.numpy())
    assert ref_s.sum() >= 10
    np.testing.assert_array_equal(np.stack(spikes), ref_s)
    np.testing.assert_allclose(np.stack(vs), ref_v, rtol=1e-9, atol=1e-9)
