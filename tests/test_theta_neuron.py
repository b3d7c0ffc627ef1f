"""Theta neurons (spikes.neurons.theta): phase maps, exact spike times against a fine-step integration of the QIF
equation, and exact gradients against finite differences, also while an output spike crosses the trial end."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from spikes.neurons.theta import (
    ThetaParameters, first_spike_time, phase_from_potential, phase_jump, potential_from_phase, pseudo_rates,
    spike_volleys, theta_layer, ttfs_output,
)

P = ThetaParameters()          # tau = 6/pi, I0 = 5/4: Theta = 6
T = 2.0


def test_parameters_and_maps():
    assert P.period == pytest.approx(6.0)
    with pytest.raises(ValueError, match="i0"):
        ThetaParameters(i0=0.2)
    phi = torch.linspace(0.05, P.period - 0.05, 101, dtype=torch.float64)
    assert torch.allclose(phase_from_potential(potential_from_phase(phi, P), P), phi, atol=1e-12)
    # H against its definition Phi(Phi^-1(phi) + w), by hand in numpy (away from the singular ends)
    for w in (-3.0, -0.4, 0.0, 0.7, 5.0):
        v = 0.5 + P.root * np.tan(P.kappa * phi.numpy() - np.pi / 2) + w
        ref = (np.arctan((v - 0.5) / P.root) + np.pi / 2) / P.kappa
        assert np.allclose(phase_jump(phi, torch.full_like(phi, w), P).numpy(), ref, atol=1e-10)
    ends = torch.tensor([0.0, P.period], dtype=torch.float64)
    assert torch.equal(phase_jump(ends, torch.tensor([4.0, -4.0], dtype=torch.float64), P), ends)
    # simultaneous inputs add in V
    w1, w2 = torch.full_like(phi, 0.8), torch.full_like(phi, -1.3)
    assert torch.allclose(phase_jump(phase_jump(phi, w1, P), w2, P), phase_jump(phi, w1 + w2, P), atol=1e-10)


def integrate_qif(phi0: float, in_times, in_weights, p: ThetaParameters, t_end: float, v_peak: float = 1e6):
    """Spike times of one QIF neuron by a fine-step Runge-Kutta integration of tau dV/dt = V(V-1) + I0 in V,
    with the input jumps V += w, a spike when V reaches v_peak (restart at -v_peak)."""
    v = 0.5 + p.root * math.tan(p.kappa * phi0 - math.pi / 2)
    rhs = lambda t, y: [(y[0] * (y[0] - 1.0) + p.i0) / p.tau]  # noqa: E731
    hit = lambda t, y: y[0] - v_peak  # noqa: E731
    hit.terminal, hit.direction = True, 1
    spikes, t = [], 0.0
    for t_next, w in [*zip(in_times, in_weights), (t_end, 0.0)]:
        while t < t_next:
            sol = solve_ivp(rhs, (t, t_next), [v], method="DOP853", rtol=1e-12, atol=1e-9, events=hit, max_step=1e-3)
            if sol.t_events[0].size:
                spikes.append(float(sol.t_events[0][0]))
                t, v = spikes[-1], -v_peak
            else:
                t, v = t_next, float(sol.y[0, -1])
        v += w
    return spikes


def test_single_neuron_spike_times_match_numerical_integration():
    in_times = [0.3, 0.75, 1.1, 1.6]
    in_weights = [0.9, -0.6, 4.0, 4.0]
    phi0 = 5.5
    times = torch.tensor([in_times], dtype=torch.float64)
    drive = torch.tensor(in_weights, dtype=torch.float64).reshape(1, -1, 1)
    run = theta_layer(times, drive, torch.tensor([phi0], dtype=torch.float64), P, T)
    exact = sorted(float(t) for t in run.spike_times[0, 0] if math.isfinite(t))
    numeric = integrate_qif(phi0, in_times, in_weights, P, T)
    assert len(exact) >= 2, "the case should have several spikes"
    assert len(exact) == len(numeric) == int(run.counts[0, 0])
    assert np.abs(np.array(exact) - np.array(numeric)).max() < 1e-5
    # the phase at the trial end is the potential's phase there
    assert math.isfinite(float(run.phase_end[0, 0])) and 0 <= float(run.phase_end[0, 0]) < P.period


def test_layer_refuses_long_trials_and_bad_shapes():
    with pytest.raises(ValueError, match="trial_time"):
        theta_layer(torch.zeros(1, 1), torch.zeros(1, 1, 2), torch.zeros(2), P, 7.0)
    with pytest.raises(ValueError, match="phi0"):
        theta_layer(torch.zeros(1, 1), torch.zeros(1, 1, 2), torch.zeros(3), P, T)


def two_layer_output(w_in, w_out, phi_h, phi_o, in_times, pseudo=True):
    """TTFS output of input volleys -> theta hidden -> theta output, with the pseudodynamics' input."""
    times = in_times.expand(1, -1)
    drive = w_in.t().unsqueeze(0)                        # one input neuron per event
    hidden = theta_layer(times, drive, phi_h, P, T)
    t2, d2 = spike_volleys(hidden.spike_times, w_out, T)
    out = theta_layer(t2, d2, phi_o, P, T)
    pseudo_in = (pseudo_rates(hidden.phase_end, torch.zeros_like(hidden.phase_end), P) @ w_out.t()) if pseudo else 0.0
    return ttfs_output(out, pseudo_in, P, T), hidden, out


def test_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(4)
    in_times = torch.tensor([0.1, 0.4, 0.9], dtype=torch.float64)
    w_in = (torch.rand(4, 3, generator=g, dtype=torch.float64) * 3.0 - 0.5).requires_grad_()
    w_out = (torch.rand(2, 4, generator=g, dtype=torch.float64) * 3.0 - 0.8).requires_grad_()
    phi_h = torch.tensor([4.2, 3.9, 4.6, 3.0], dtype=torch.float64, requires_grad=True)
    phi_o = torch.tensor([3.8, 4.1], dtype=torch.float64, requires_grad=True)
    t_out, hidden, out = two_layer_output(w_in, w_out, phi_h, phi_o, in_times)
    assert int(hidden.counts.sum()) >= 2 and bool(torch.isfinite(first_spike_time(out.spike_times)).any())

    def loss(*params):
        t, _, _ = two_layer_output(*params, in_times)
        return (t * torch.tensor([[1.0, -0.7]], dtype=torch.float64)).sum()

    assert torch.autograd.gradcheck(loss, (w_in, w_out, phi_h, phi_o), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("pseudo", [False, True])
def test_gradient_continuous_when_the_output_spike_crosses_the_trial_end(pseudo):
    """Sweep an output weight so that the output's first spike moves past T: the output time and its gradient stay
    continuous, and the gradient matches finite differences on both sides."""
    in_times = torch.tensor([0.2, 0.5], dtype=torch.float64)
    w_in = torch.tensor([[2.0, 0.5], [0.3, 1.5]], dtype=torch.float64)
    phi_h = torch.tensor([4.5, 4.0], dtype=torch.float64)
    phi_o = torch.tensor([3.5], dtype=torch.float64)

    def t_of(w: float):
        w_out = torch.tensor([[w, 0.4]], dtype=torch.float64, requires_grad=True)
        t, _, out = two_layer_output(w_in, w_out, phi_h, phi_o, in_times, pseudo)
        t = t[0, 0]
        (grad,) = torch.autograd.grad(t, w_out)
        return float(t.detach()), float(grad[0, 0]), bool(torch.isfinite(out.spike_times).any())

    lo, hi = -2.0, 3.0                                  # silent at lo, spiking in the trial at hi
    assert not t_of(lo)[2] and t_of(hi)[2]
    for _ in range(60):                                  # bisect the weight at which the spike reaches T
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if t_of(mid)[2] else (mid, hi)
    eps = 1e-7
    t_before, g_before, spiked_before = t_of(hi + eps)   # ordinary spike just before T
    t_after, g_after, spiked_after = t_of(lo - eps)      # pseudospike just after T
    assert spiked_before and not spiked_after
    assert t_before < T < t_after and t_after - t_before < 1e-5
    assert g_before != 0 and abs(g_before - g_after) < 1e-4 * abs(g_before)
    h = 1e-5
    for w0, g in ((hi + 1e-3, t_of(hi + 1e-3)[1]), (lo - 1e-3, t_of(lo - 1e-3)[1])):
        fd = (t_of(w0 + h)[0] - t_of(w0 - h)[0]) / (2 * h)
        assert fd == pytest.approx(g, rel=1e-5, abs=1e-8)


def test_pseudospikes_give_silent_hidden_neurons_a_gradient():
    in_times = torch.tensor([0.2], dtype=torch.float64)
    w_in = torch.tensor([[0.1]], dtype=torch.float64, requires_grad=True)
    w_out = torch.tensor([[0.5]], dtype=torch.float64, requires_grad=True)
    phi = torch.tensor([3.0], dtype=torch.float64)
    for pseudo, expect_grad in ((True, True), (False, False)):
        t, hidden, _ = two_layer_output(w_in, w_out, phi, phi, in_times, pseudo)
        assert int(hidden.counts.sum()) == 0                      # everything silent
        g = torch.autograd.grad(t.sum(), w_in, allow_unused=True)[0] if t.requires_grad else None
        assert (g is not None and float(g.abs().sum()) > 0) == expect_grad
