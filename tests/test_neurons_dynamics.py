"""Neuron dynamics against hand-computed values, surrogate gradients against their formulas, PLIF's d/dalpha."""
from __future__ import annotations

import math

import pytest
import torch

from spikes.neurons import PLIF, NeuronParameters, neuron_step
from spikes.neurons.sequence import run_sequence, run_sequence_reference
from spikes.surrogates import Surrogate


def trace(inputs, p, runner=None):
    """Spikes and post-reset membrane of one neuron over ``inputs`` (per-step path, or ``runner``)."""
    x = torch.tensor(inputs, dtype=torch.float64).reshape(-1, 1)
    if runner is not None:
        s, _ = runner(x, p)
        return s.flatten().tolist(), None
    state, spikes, vs = None, [], []
    for x_t in x:
        s, state = neuron_step(x_t, state, p)
        spikes.append(float(s))
        vs.append(float(state.v))
    return spikes, vs


HAND = [  # (parameters, input, spikes, membrane after reset), worked out by hand from the equations
    (dict(alpha=0.5), [0.6, 0.6, 0.6, 1.5], [0, 0, 1, 1], [0.6, 0.9, 0.05, 0.525]),
    (dict(alpha=0.5, reset="zero"), [0.6, 0.6, 0.6, 1.5], [0, 0, 1, 1], [0.6, 0.9, 0.0, 0.0]),
    (dict(alpha=1.0, reset="zero"), [0.4, 0.4, 0.4, 0.4], [0, 0, 1, 0], [0.4, 0.8, 0.0, 0.4]),
    (dict(alpha=0.5, alpha_syn=0.5, reset="zero"), [1.2, 0, 0, 0], [1, 0, 0, 0], [0.0, 0.6, 0.6, 0.45]),
    (dict(alpha=1.0, beta=0.5, rho=0.5), [1.1, 1.1, 1.1, 1.1], [1, 0, 1, 1], [0.1, 1.2, 1.3, 1.4]),
    (dict(alpha=1.0, reset="zero", refractory_steps=2), [0.6] * 6, [0, 1, 0, 0, 0, 1], [0.6, 0, 0, 0, 0.6, 0]),
    (dict(alpha=0.5, bias=0.25), [0.5, 0.5, 0.5], [0, 1, 0], [0.75, 0.125, 0.8125]),
]


@pytest.mark.parametrize("kw,inputs,spikes,vs", HAND)
def test_hand_computed(kw, inputs, spikes, vs):
    p = NeuronParameters(**kw)
    s, v = trace(inputs, p)
    assert s == spikes
    assert v == pytest.approx(vs, abs=1e-12)
    assert trace(inputs, p, run_sequence)[0] == spikes


def test_threshold_is_strict():
    s, _ = trace([1.0, 0.0], NeuronParameters(alpha=0.0))
    assert s == [0, 0]


# ds/dx formulas of spikes/surrogates.py's docstring, written out independently
FORMULAS = {
    "atan": lambda x, k, w: k / (2 * (1 + (math.pi / 2 * k * x) ** 2)),
    "fast_sigmoid": lambda x, k, w: 1 / (1 + k * abs(x)) ** 2,
    "triangle": lambda x, k, w: k / w * max(0.0, 1 - abs(x) / w),
    "straight_through": lambda x, k, w: k,
}


@pytest.mark.parametrize("kind", sorted(FORMULAS))
@pytest.mark.parametrize("slope", [None, 3.0])
def test_surrogate_gradient_formula(kind, slope):
    sur = Surrogate(kind, slope, width=0.7)
    xs = [-1.5, -0.6, -0.1, 0.0, 0.05, 0.4, 0.69, 2.0]
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    s = sur(x)
    assert s.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    (g,) = torch.autograd.grad(s.sum(), x)
    expected = [FORMULAS[kind](v, sur.slope, 0.7) for v in xs]
    assert g.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_surrogate_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown"):
        Surrogate("relu")
    with pytest.raises(ValueError, match="slope"):
        Surrogate("atan", -1.0)


def test_plif_alpha_gradient_matches_finite_differences():
    """Below threshold v[T-1] = sum_t alpha^(T-1-t) (1-alpha) x[t] is smooth in w (alpha = sigmoid(w)); a narrow
    triangle surrogate is 0 far from threshold, so the surrogate gradient is the true derivative there."""
    torch.manual_seed(0)
    x = torch.rand(12, 3, 4, dtype=torch.float64) * 0.1
    plif = PLIF(alpha0=0.7, decay_input=True, surrogate=Surrogate("triangle", 1.0, 0.1)).double()

    def final_v(module):
        _, state = run_sequence(x * module.input_gain(), module.params)
        return state.v.sum()

    (g,) = torch.autograd.grad(final_v(plif), plif.w)
    eps = 1e-6
    with torch.no_grad():
        plif.w += eps
        up = float(final_v(plif))
        plif.w -= 2 * eps
        down = float(final_v(plif))
    assert float(g) == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_plif_alpha_gradient_with_spikes_matches_reference_autograd():
    torch.manual_seed(1)
    x = torch.rand(30, 4, 5, dtype=torch.float64) * 1.5
    plif = PLIF(alpha0=0.6).double()
    xin = x * plif.input_gain()
    s1, _ = run_sequence(xin, plif.params)
    (g1,) = torch.autograd.grad(s1.sum(), plif.w)
    xin = x * plif.input_gain()
    s2, _ = run_sequence_reference(xin, plif.params)
    (g2,) = torch.autograd.grad(s2.sum(), plif.w)
    assert s1.sum() > 0 and torch.equal(s1, s2)
    assert float(g1) == pytest.approx(float(g2), rel=1e-9)
