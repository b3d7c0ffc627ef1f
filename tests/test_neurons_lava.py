"""``NeuronParameters.lava_parameters()`` against Lava's own floating-point LIF (lava-nc, CPU simulation).

Graph: RingBuffer(inputs) -> Dense(identity) -> LIF -> Extractor (spikes); Dense delivers at step t what it
received at t-1 (one step of latency), so Lava's LIF sees ``x[t-1]``. ``u`` and ``v`` are read at two points.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikes.neurons import NeuronParameters, neuron_step

lava = pytest.importorskip("lava.proc.lif.process", reason="lava-nc is not installed (pip install spikes[lava])")
pytestmark = pytest.mark.lava


def run_lava_lif(inputs: np.ndarray, lif_kwargs: dict, chunks: tuple[int, ...]):
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF

    steps, n = inputs.shape
    source = RingBuffer(data=inputs.T.copy())
    dense = Dense(weights=np.eye(n), num_message_bits=24)
    lif = LIF(shape=(n,), **lif_kwargs)
    out = Extractor(shape=(n,), buffer_size=max(chunks))
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(out.in_port)
    cfg = Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map={Extractor: PyLoihiExtractorModel})
    spikes, snapshots = [], []
    try:
        for chunk in chunks:
            lif.run(condition=RunSteps(num_steps=chunk), run_cfg=cfg)
            spikes.extend(np.array(out.receive(), dtype=np.float64) for _ in range(chunk))
            snapshots.append((np.array(lif.u.get(), dtype=np.float64), np.array(lif.v.get(), dtype=np.float64)))
    finally:
        lif.stop()
    return np.stack(spikes), snapshots


def test_lava_floating_point_lif_matches_neuron_step():
    rng = np.random.default_rng(0)
    steps, n = 50, 4
    inputs = rng.uniform(0.0, 0.45, size=(steps, n))
    p = NeuronParameters(alpha=0.875, alpha_syn=0.75, v_th=1.0, reset="zero", bias=0.015625)
    lava_spikes, snapshots = run_lava_lif(inputs, p.lava_parameters(), chunks=(25, 25))

    x = torch.zeros(steps, n, dtype=torch.float64)
    x[1:] = torch.from_numpy(inputs[:-1])  # Dense's one step of latency
    state, spikes, at = None, [], {}
    for t in range(steps):
        s, state = neuron_step(x[t], state, p)
        spikes.append(s.numpy())
        at[t + 1] = (state.i.numpy().copy(), state.v.numpy().copy())
    spikes = np.stack(spikes)
    assert spikes.sum() >= 10, "the test input should make the neurons fire"
    np.testing.assert_array_equal(lava_spikes, spikes)
    for step, (u, v) in zip((25, 50), snapshots):
        np.testing.assert_allclose(u, at[step][0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(v, at[step][1], rtol=0, atol=1e-12)


def test_lava_parameters_refuse_what_lava_cannot_express():
    with pytest.raises(ValueError, match="reset"):
        NeuronParameters(reset="subtract").lava_parameters()
    with pytest.raises(ValueError, match="threshold"):
        NeuronParameters(reset="zero", beta=0.5, rho=0.9).lava_parameters()
