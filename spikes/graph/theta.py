r"""The ``Theta`` kind: a population of theta neurons (:mod:`spikes.neurons.theta`) on a time grid of step ``dt``, the
discrete form that the Lava process ``spikes.deploy.processes.theta.ThetaNeurons`` runs.

The exact model is event-based; on a grid every input that arrives during step ``n`` (time ``[n dt, (n+1) dt)``)
is applied at the middle of the step. Per step, with the summed input ``x[n]`` (the weights of the spikes that
arrived)::

    phi <- phi + dt/2;  s1 = phi >= Theta;  phi <- phi - Theta s1      free flow, first half
    phi <- H(phi, x[n])                                                the input volley
    phi <- phi + dt/2;  s2 = phi >= Theta;  phi <- phi - Theta s2      second half
    s[n] = s1 or s2                                                    phi[0] = phi0

Free flow is exact (``dphi/dt = 1``), so only the input times are rounded (by at most ``dt/2``); a spike in step
``n`` stands for the time ``(n + 1/2) dt``. ``step`` is this grid reference (``Graph.forward``).

A trained network can be very sensitive to that rounding: an inhibitory input that meets a neuron close to its
threshold (``V`` large) moves its phase by an amount that changes like ``V^2`` with the arrival time. The Lava
deployment therefore carries every spike's time within its step (:func:`theta_timed_step`): a spike is sent as the
graded value ``p = 1 + (t - n dt) / dt`` in ``[1, 2)``, the next layer receives both ``A = sum_i w_i`` (the spikes
as events) and ``P = sum_i w_i p_i``, and applies the volley at ``tau = (P / A - 1) dt`` within the step. That is
exact when a neuron receives one spike (or one simultaneous volley) per step, and a weighted mean of the arrival
times otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from spikes.graph.node import PopulationNode, as_array, as_shape
from spikes.neurons.theta import ThetaParameters, phase_jump


@dataclass(eq=False)
class Theta(PopulationNode):
    """``shape`` (N,) theta neurons with ``tau`` > 0, ``i0`` > 1/4, initial phases ``phi0`` (scalar or (N,), in
    ``[0, Theta]``), grid step ``dt`` (> 0, below ``Theta / 2``) and the trial length ``trial_time`` the network was
    trained for (a deployment runs ``ceil(trial_time / dt)`` steps)."""

    shape: tuple[int, ...]
    tau: float = 6.0 / math.pi
    i0: float = 1.25
    phi0: float | np.ndarray = 3.0
    dt: float = 0.01
    trial_time: float = 2.0
    input_delay: int = 0

    graded = False

    def __post_init__(self) -> None:
        what = type(self).__name__
        self.shape = as_shape(self.shape, f"{what}.shape")
        if len(self.shape) != 1:
            raise ValueError(f"{what}: shape must be one-dimensional (N,), got {self.shape}")
        self.tau, self.i0, self.dt, self.trial_time = (float(v) for v in (self.tau, self.i0, self.dt, self.trial_time))
        period = self.params.period                       # validates tau and i0
        phi0 = as_array(self.phi0, f"{what}.phi0")
        if phi0.ndim and phi0.size != self.shape[0]:
            raise ValueError(f"{what}: phi0 must be a scalar or have {self.shape[0]} entries, got {phi0.size}")
        if phi0.min() < 0 or phi0.max() > period:
            raise ValueError(f"{what}: phi0 must lie in [0, Theta = {period:.4g}], got {phi0.min()}..{phi0.max()}")
        self.phi0 = float(phi0) if phi0.ndim == 0 else phi0.reshape(-1)
        if not 0 < self.dt < period / 2:
            raise ValueError(f"{what}: dt must be in (0, Theta/2 = {period / 2:.4g}), got {self.dt}")
        if not 0 < self.trial_time < period:
            raise ValueError(f"{what}: trial_time must be in (0, Theta = {period:.4g}), got {self.trial_time}")
        if self.input_delay:
            raise ValueError(f"{what}: input_delay must be 0 (the grid applies inputs in their own step)")

    @property
    def params(self) -> ThetaParameters:
        return ThetaParameters(self.tau, self.i0)

    @property
    def steps(self) -> int:
        """Grid steps of one trial."""
        return int(math.ceil(self.trial_time / self.dt - 1e-9))

    def phi0_vector(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.phi0, dtype=np.float64), self.shape).copy()

    def step(self, x: torch.Tensor, state):
        """``(s[n], phi[n+1])`` for the summed input ``x[n]`` (B, N); ``state`` None: ``phi = phi0``."""
        if state is None:
            state = torch.as_tensor(self.phi0_vector(), dtype=x.dtype, device=x.device).expand_as(x).clone()
        return theta_grid_step(state, x, self.params, self.dt)


def theta_grid_step(phi, x, params: ThetaParameters, dt: float):
    """One grid step (module docstring) on tensors or arrays: ``(spikes, phi)``; the Lava process runs this too."""
    period = params.period
    torch_in = isinstance(phi, torch.Tensor)
    phi = phi + 0.5 * dt
    s1 = phi >= period
    phi = phi - period * s1
    phi = phase_jump(phi, torch.as_tensor(x, dtype=phi.dtype) if torch_in else np.asarray(x, dtype=np.float64), params)
    phi = phi + 0.5 * dt
    s2 = phi >= period
    phi = phi - period * s2
    s = s1 | s2
    return (s.to(phi.dtype) if torch_in else s.astype(np.float64)), phi


def theta_timed_step(phi: np.ndarray, a: np.ndarray, p: np.ndarray, params: ThetaParameters, dt: float,
                     eps: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """One step with sub-step timing (module docstring): ``a = sum w`` and ``p = sum w p_i`` of the spikes that
    arrive; returns ``(payload, phi)`` with ``payload = 1 + (spike time within the step) / dt`` where a neuron
    fires, else 0."""
    period = params.period
    a, p = np.asarray(a, dtype=np.float64), np.asarray(p, dtype=np.float64)
    frac = np.where(np.abs(a) > eps, p / np.where(np.abs(a) > eps, a, 1.0) - 1.0, 0.5)
    tau = np.clip(frac, 0.0, 1.0) * dt
    first = phi + tau
    s1 = first >= period
    t1 = period - phi                                   # crossing time within the step, first part
    first = first - period * s1
    jumped = phase_jump(first, a, params)
    second = jumped + (dt - tau)
    s2 = second >= period
    t2 = tau + period - jumped
    second = second - period * s2
    payload = np.where(s1, 1.0 + t1 / dt, np.where(s2, 1.0 + t2 / dt, 0.0))
    return np.minimum(payload, np.nextafter(2.0, 1.0)) * (s1 | s2), second
