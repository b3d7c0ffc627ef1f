"""Growth-transform neurons: one step against hand-computed values, the |v| <= vc bound, single-neuron behaviours."""
from __future__ import annotations

import math

import pytest
import torch

from spikes.neurons.growth_transform import (GTNeurons, GTParameters, GTState, Modulation, gt_initial_state,
                                             gt_step, run_gt)


def test_gt_step_matches_hand_computed_values():
    # two coupled neurons, one above threshold (spikes, feels the penalty current)
    q = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    p = GTParameters(q=q, lam=10.0, vc=1.0, i_psi=3.0, modulation=Modulation("constant", a=0.5))
    v = torch.tensor([[-0.2, 0.1]], dtype=torch.float64)
    b = torch.tensor([[0.6, 0.4]], dtype=torch.float64)
    state = GTState(v, torch.zeros_like(v), torch.ones_like(v))
    s, new = gt_step(b, state, p)
    # by hand: g1 = 0.6 - (-0.2 + 0.05) - 0 = 0.75 ; g2 = 0.4 - (-0.1 + 0.1) - 3 = -2.6
    # u1 = (0.75 - 2) / (-0.15 + 10) = -1.25 / 9.85 ; u2 = (-2.6 + 1) / (-0.26 + 10) = -1.6 / 9.74
    u1, u2 = -1.25 / 9.85, -1.6 / 9.74
    expected = [0.5 * u1 + 0.5 * -0.2, 0.5 * u2 + 0.5 * 0.1]
    assert s.tolist() == [[0.0, 1.0]]
    assert new.v[0].tolist() == pytest.approx(expected, abs=1e-12)


def test_adaptive_modulation_hand_computed():
    m = Modulation("adaptive", a=0.5, depth=0.95, gain=0.2, decay=0.99, kick=2.0)
    p = GTParameters(q=1.0, lam=20.0, modulation=m)
    v = torch.tensor([[-0.1]], dtype=torch.float64)
    c = torch.tensor([[10.0]], dtype=torch.float64)
    s, new = gt_step(torch.tensor([[0.5]], dtype=torch.float64), GTState(v, c, torch.ones_like(v)), p)
    g = 0.5 + 0.1
    u = (g - 2.0) / (-0.1 * g + 20.0)
    c_new = 0.99 * 10.0  # no spike
    a = 0.5 * (1 + 0.95 * math.tanh(-0.2 * c_new))
    assert s.item() == 0.0 and new.c.item() == pytest.approx(c_new)
    assert new.v.item() == pytest.approx(a * u + (1 - a) * -0.1, abs=1e-12)


def test_bound_holds_for_any_input_and_coupling():
    gen = torch.Generator().manual_seed(1)
    n = 20
    w = torch.randn(n, n, generator=gen, dtype=torch.float64) * 3
    q = (w + w.T) / 2
    p = GTParameters(q=q, lam=5.0, vc=0.7, i_psi=3.0)  # lam far below |g|: raised per neuron
    b = torch.randn(300, 4, n, generator=gen, dtype=torch.float64) * 10
    _, potentials, state = run_gt(b, p)
    assert potentials.abs().max() <= 0.7 + 1e-12 and state.v.abs().max() <= 0.7 + 1e-12
    assert torch.isfinite(potentials).all()


def _isi(spikes: torch.Tensor) -> torch.Tensor:
    return torch.diff(torch.nonzero(spikes.flatten()).flatten())


def test_tonic_rate_grows_with_input_and_is_periodic():
    b = torch.tensor([[0.1, 0.3, 0.6, 1.0]], dtype=torch.float64)
    spikes, _, _ = run_gt(b, GTParameters(), steps=600)
    rates = spikes[100:].mean(0)[0]
    assert (torch.diff(rates) > 0).all() and rates[0] > 0
    isi = _isi(spikes[100:, 0, 2])
    assert isi.max() - isi.min() <= 1  # tonic: regular spiking
    silent, _, _ = run_gt(torch.tensor([[-0.3]], dtype=torch.float64), GTParameters(), steps=300)
    assert silent.sum() == 0  # below threshold: no spikes (leaky integration regime)


def test_spike_frequency_adaptation_and_bursting():
    b = torch.tensor([[0.6]], dtype=torch.float64)
    adapt, _, _ = run_gt(b, GTParameters(modulation=Modulation("adaptive")), steps=800)
    isi = _isi(adapt)
    assert isi[-1] >= 3 * isi[0] and (torch.diff(isi[:6]) >= 0).all()
    burst, _, _ = run_gt(b, GTParameters(modulation=Modulation("burst")), steps=2000)
    isi = _isi(burst)
    long = isi > 50
    assert long.sum() >= 4 and (~long).sum() >= 4 * long.sum()  # bursts of short ISIs separated by pauses


def test_leaky_integration_of_a_pulse():
    b = torch.full((600, 1, 1), -0.5, dtype=torch.float64)
    b[200:300] += 0.4
    spikes, v, _ = run_gt(b, GTParameters())
    assert spikes.sum() == 0
    assert abs(v[199].item() + 0.5) < 0.02  # rest = optimum b / q
    assert v[299].item() > v[199].item() + 0.3  # integrates the pulse towards -0.1
    assert abs(v[599].item() + 0.5) < 0.02  # and leaks back to rest


def test_module_matches_step_and_validates():
    p = GTParameters()
    b = torch.rand(30, 3, 5, dtype=torch.float64)
    mod = GTNeurons(p)
    spikes = mod(b)
    state = gt_initial_state((3, 5), dtype=torch.float64)
    for t in range(30):
        s, state = mod.step(b[t], state)
        assert torch.equal(s, spikes[t])
    with pytest.raises(ValueError, match="symmetric"):
        GTParameters(q=torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="lam"):
        GTParameters(lam=0.0)
    with pytest.raises(ValueError, match="kind"):
        Modulation("nope")
