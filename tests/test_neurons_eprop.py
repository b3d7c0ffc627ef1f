"""e-prop's neuron step (``spikes.neurons.eprop``) against a two-step case computed by hand: the reset entering
the next step undecayed, the refractory period (spike and psi blocked, membrane still integrating), the ALIF
threshold ``v_th + beta a``, and the gradient through the reset with and without ``stop_gradient``."""
from __future__ import annotations

import pytest
import torch

from spikes.neurons import EpropParameters, EpropState, eprop_initial_state, eprop_neuron_step

# alpha = rho = 0.5, v_th = 1, n_ref = 1, gamma = 0.3: psi = 0.3 max(0, 1 - |v - A|) while not refractory.
# Neurons: 0 LIF fires at t=1, refractory at t=2 although above threshold; 1 ALIF starts with a trace
# a[0] = 0.5, so A[1] = 1 + 2 * 0.25 = 1.5 blocks its spike at t=1 (a LIF would fire), and it fires at t=2;
# 2 LIF refractory at t=1 (r[0] = 1) although above threshold, keeps integrating and fires at t=2;
# 3 ALIF fires at t=1 from rest, so its threshold rises to 1 + 2 * 1 = 3 at t=2.
PARAMS = dict(alpha=0.5, rho=0.5, v_th=1.0, n_ref=1, gamma=0.3)
BETA = [0.0, 2.0, 0.0, 2.0]
I1 = [1.5, 1.4, 1.3, 1.2]
I2 = [1.4, 0.8, 0.5, 2.0]
# hand computation, step 1 (v[0] = 0, z[0] = 0, a[0] = [0, 0.5, 0, 0], r[0] = [0, 0, 1, 0]):
#   v1 = I1;  a1 = 0.5 a0 = [0, 0.25, 0, 0];  A1 = [1, 1.5, 1, 1];  v1 - A1 = [0.5, -0.1, 0.3, 0.2]
#   z1 = [1, 0, 0 (refractory), 1];  psi1 = 0.3 [0.5, 0.9, 0 (refractory), 0.8];  r1 = [1, 0, 0, 1]
V1, A1, Z1 = [1.5, 1.4, 1.3, 1.2], [0.0, 0.25, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0]
PSI1, R1 = [0.15, 0.27, 0.0, 0.24], [1, 0, 0, 1]
# step 2: v2 = 0.5 v1 + I2 - z1 = [1.15, 1.5, 1.15, 1.6];  a2 = 0.5 a1 + z1 = [1, 0.125, 0, 1]
#   A2 = 1 + beta a2 = [1, 1.25, 1, 3];  v2 - A2 = [0.15, 0.25, 0.15, -1.4]
#   z2 = [0 (refractory), 1, 1, 0];  psi2 = 0.3 [0 (refractory), 0.75, 0.85, 0 (refractory)];  r2 = [0, 1, 1, 0]
V2, A2, Z2 = [1.15, 1.5, 1.15, 1.6], [1.0, 0.125, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]
PSI2, R2 = [0.0, 0.225, 0.255, 0.0], [0, 1, 1, 0]


def _t(values, dtype=torch.float64):
    return torch.tensor([values], dtype=dtype)


def _start() -> EpropState:
    zeros = _t([0.0] * 4)
    return EpropState(zeros, _t([0.0, 0.5, 0.0, 0.0]), zeros, _t([0, 0, 1, 0], torch.int32))


def _params() -> EpropParameters:
    return EpropParameters(beta=torch.tensor(BETA, dtype=torch.float64), **PARAMS)


def test_two_steps_by_hand():
    z, psi, s1 = eprop_neuron_step(_t(I1), _start(), _params())
    for got, want in ((s1.v, V1), (s1.a, A1), (psi, PSI1)):
        torch.testing.assert_close(got, _t(want), rtol=0, atol=1e-12)
    assert torch.equal(z, _t(Z1)) and torch.equal(s1.z, z)
    assert s1.r.dtype == torch.int32 and s1.r.tolist() == [R1]
    z, psi, s2 = eprop_neuron_step(_t(I2), s1, _params())
    for got, want in ((s2.v, V2), (s2.a, A2), (psi, PSI2)):
        torch.testing.assert_close(got, _t(want), rtol=0, atol=1e-12)
    assert torch.equal(z, _t(Z2)) and s2.r.tolist() == [R2]


def test_without_refractory_period_the_blocked_spikes_fire():
    """n_ref = 0: neuron 2 fires at t=1 (v1 - A1 = 0.3) and neuron 0 at t=2 (its v2 = 1.15 after the reset)."""
    p = EpropParameters(beta=torch.tensor(BETA, dtype=torch.float64), **{**PARAMS, "n_ref": 0})
    z1, psi1, s1 = eprop_neuron_step(_t(I1), _start(), p)
    assert z1.tolist() == [[1.0, 0.0, 1.0, 1.0]]
    torch.testing.assert_close(psi1, _t([0.15, 0.27, 0.21, 0.24]), rtol=0, atol=1e-12)
    z2, _, s2 = eprop_neuron_step(_t(I2), s1, p)
    # v2 = 0.5 v1 + I2 - z1 = [1.15, 1.5, 0.15, 1.6]; A2 = [1, 1.25, 1, 3]
    torch.testing.assert_close(s2.v, _t([1.15, 1.5, 0.15, 1.6]), rtol=0, atol=1e-12)
    assert z2.tolist() == [[1.0, 1.0, 0.0, 0.0]]


@pytest.mark.parametrize("stop_gradient", [False, True])
def test_gradient_through_reset_and_adaptation(stop_gradient):
    """dz2/dI1 = psi2 (alpha - v_th psi1 [reset; detached with stop_gradient] - beta psi1 [adaptation])."""
    i1 = _t(I1).requires_grad_(True)
    _, _, s1 = eprop_neuron_step(i1, _start(), _params(), stop_gradient=stop_gradient)
    z2, _, _ = eprop_neuron_step(_t(I2), s1, _params(), stop_gradient=stop_gradient)
    (grad,) = torch.autograd.grad(z2.sum(), i1)
    reset = [0.0 if stop_gradient else p for p in PSI1]
    want = [p2 * (0.5 - r - b * p1) for p2, r, b, p1 in zip(PSI2, reset, BETA, PSI1)]
    # ALIF neuron 1: 0.225 (0.5 - 0.27 - 0.54) = -0.06975, or 0.225 (0.5 - 0.54) = -0.009 with stop_gradient
    assert want[1] == pytest.approx(-0.009 if stop_gradient else -0.06975)
    torch.testing.assert_close(grad, _t(want), rtol=0, atol=1e-12)


def test_currents_in_order_and_rest_state():
    """Several currents are summed onto the decayed membrane in order; state None is the rest state."""
    a, b = torch.tensor([[0.75, 0.25]]), torch.tensor([[0.5, 1.0]])
    p = EpropParameters(alpha=0.5, rho=0.5, v_th=1.0)
    z, psi, s = eprop_neuron_step((a, b), None, p)
    z_sum, psi_sum, s_sum = eprop_neuron_step(a + b, eprop_initial_state((1, 2)), p)
    assert torch.equal(s.v, torch.tensor([[1.25, 1.25]])) and torch.equal(s.v, s_sum.v)
    assert torch.equal(z, z_sum) and torch.equal(psi, psi_sum) and z.tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError, match="empty sequence"):
        eprop_neuron_step((), None, p)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="alpha .* must be in"):
        EpropParameters(alpha=1.5, rho=0.5, v_th=1.0)
    with pytest.raises(ValueError, match="rho .* must be in"):
        EpropParameters(alpha=0.5, rho=-0.1, v_th=1.0)
    with pytest.raises(ValueError, match="v_th must be finite and > 0"):
        EpropParameters(alpha=0.5, rho=0.5, v_th=0.0)
    with pytest.raises(ValueError, match="n_ref must be a whole number"):
        EpropParameters(alpha=0.5, rho=0.5, v_th=1.0, n_ref=1.5)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        EpropParameters(alpha=0.5, rho=0.5, v_th=1.0, beta=torch.tensor([0.0, -1.0]))
    with pytest.raises(ValueError, match="gamma must be > 0"):
        EpropParameters(alpha=0.5, rho=0.5, v_th=1.0, gamma=0.0)
