r"""Theta neurons: the oscillatory quadratic integrate-and-fire (QIF) neuron in phase form, simulated event by event
with exact spike times (Klos & Memmesheimer, "Smooth exact gradient descent learning in spiking neural networks",
arXiv 2309.14523).

The QIF neuron with delta-pulse inputs and a constant drive ``I0 > 1/4``::

    tau dV/dt = V (V - 1) + I0 + tau sum_i w_i delta(t - t_i)

fires when ``V`` reaches ``+inf`` and restarts at ``-inf``. With ``c = I0 - 1/4`` and ``kappa = sqrt(c) / tau`` its
phase

    phi = Phi(V) = (atan((V - 1/2) / sqrt(c)) + pi/2) / kappa,      V = Phi^-1(phi) = 1/2 - sqrt(c) cot(kappa phi)

grows at rate one between inputs (``dphi/dt = 1``), from 0 (``V = -inf``) to the threshold ``Theta = pi / kappa``
(``V = +inf``, the free period). An input ``w`` moves the potential by ``w``, i.e. the phase by the transfer function

    H(phi, w) = Phi(Phi^-1(phi) + w) = phi + atan2(a sin^2(kappa phi), 1 - (a/2) sin(2 kappa phi)) / kappa,
    a = w / sqrt(c)

(the angle addition of ``tan``; smooth everywhere, ``H(0, w) = 0`` and ``H(Theta, w) = Theta``). So an input can never
cross the threshold: a spike happens only when the free flow reaches ``Theta``, and spikes appear or vanish only at
the end of a trial. Between the input events ``t_1 <= t_2 <= ...`` the phase is linear in time, so the spike in the
interval ``(t_k, t_{k+1}]`` is at ``t_k + Theta - phi(t_k+)`` exactly; every spike time is a smooth function of the
weights, the input times and the initial phases, and autograd through these expressions is the exact gradient.

A silent neuron gets a pseudospike time (:func:`pseudo_spike_time`): the time the free flow would reach the
threshold after the trial end ``T``, ``T + Theta - H(phi(T), I)``, with ``I`` an extra input computed by running
the network as a rate network (:func:`pseudo_rates`, the paper's pseudodynamics; ``I = 0`` gives the free
continuation). It joins the ordinary spike time continuously when a spike crosses the trial end.

Events are given as volleys: ``times (B, E)`` (ascending per row, ``inf`` = no event) and the summed weight each
event delivers to each neuron, ``drive (B, E, N)``; simultaneous inputs add in ``V``, so one volley carries them all
(``H(H(phi, w1), w2) = H(phi, w1 + w2)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch


@dataclass(frozen=True)
class ThetaParameters:
    """``tau`` (time constant) and ``i0`` (constant drive, > 1/4: the neuron oscillates). The defaults are the paper's
    (``tau = 6 / pi``, ``I0 = 5/4``: free period ``Theta = 6``)."""

    tau: float = 6.0 / math.pi
    i0: float = 1.25

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise ValueError(f"ThetaParameters.tau must be > 0, got {self.tau}")
        if not self.i0 > 0.25:
            raise ValueError(f"ThetaParameters.i0 must be > 1/4 (an oscillating neuron), got {self.i0}")

    @property
    def root(self) -> float:
        """``sqrt(I0 - 1/4)``."""
        return math.sqrt(self.i0 - 0.25)

    @property
    def kappa(self) -> float:
        """``sqrt(I0 - 1/4) / tau``: the phase-to-angle factor."""
        return self.root / self.tau

    @property
    def period(self) -> float:
        """``Theta = pi tau / sqrt(I0 - 1/4)``: the threshold phase and the free period."""
        return math.pi / self.kappa


# ----------------------------------------------------------------------------------- the QIF <-> phase maps
def phase_from_potential(v: torch.Tensor, p: ThetaParameters) -> torch.Tensor:
    """``Phi(V) = (atan((V - 1/2) / sqrt(c)) + pi/2) / kappa``."""
    return (torch.atan((v - 0.5) / p.root) + math.pi / 2) / p.kappa


def potential_from_phase(phi: torch.Tensor, p: ThetaParameters) -> torch.Tensor:
    """``Phi^-1(phi) = 1/2 + sqrt(c) tan(kappa phi - pi/2)`` (``-inf`` at 0, ``+inf`` at ``Theta``)."""
    return 0.5 + p.root * torch.tan(p.kappa * phi - math.pi / 2)


def qif_flow(v: torch.Tensor, dt: float | torch.Tensor, p: ThetaParameters) -> torch.Tensor:
    """The QIF potential after ``dt`` of free flow, ``V(dt) = 1/2 + sqrt(c) tan(kappa dt + atan((V - 1/2)/sqrt(c)))``
    (valid until the spike: ``kappa dt + atan(...) < pi/2``)."""
    return 0.5 + p.root * torch.tan(p.kappa * dt + torch.atan((v - 0.5) / p.root))


def phase_jump(phi, w, p: ThetaParameters):
    """The transfer function ``H(phi, w)`` (module docstring), in the form without singularities; on torch tensors
    (differentiable) or numpy arrays (what the Lava process runs: no torch in its forked processes)."""
    xp = torch if isinstance(phi, torch.Tensor) else np
    a = w / p.root
    x = p.kappa * phi
    return phi + xp.arctan2(a * xp.sin(x) ** 2, 1.0 - 0.5 * a * xp.sin(2.0 * x)) / p.kappa


# ---------------------------------------------------------------------------------------- event simulation
class ThetaRun(NamedTuple):
    """Result of :func:`theta_layer`: ``spike_times (B, N, E + 1)`` (slot ``k``: the spike in the interval that ends
    with event ``k``, the last slot the one that ends at the trial end; ``inf`` where none), ``phase_end (B, N)``
    (the phase at the trial end) and ``counts (B, N)`` (spikes per neuron)."""

    spike_times: torch.Tensor
    phase_end: torch.Tensor
    counts: torch.Tensor


def theta_layer(times: torch.Tensor, drive: torch.Tensor, phi0: torch.Tensor, p: ThetaParameters,
                trial_time: float) -> ThetaRun:
    """Run a population of ``N`` theta neurons through the input volleys ``times (B, E)``, ``drive (B, E, N)``
    (module docstring) from the initial phases ``phi0 (N,)`` until ``trial_time`` (events after it are ignored).

    Exact: each interval between events is free flow, so the neuron crosses ``Theta`` in it iff
    ``phi + dt >= Theta``, at ``t_prev + Theta - phi``, and restarts from phase 0. ``trial_time < Theta`` (the
    paper's setting) allows at most one spike per interval, which is what the slots hold; a longer trial is refused.
    Differentiable in ``drive``, ``times`` and ``phi0`` (autograd gives the exact spike-time gradients).
    """
    theta = p.period
    if not 0 < trial_time < theta:
        raise ValueError(f"theta_layer: trial_time must be in (0, Theta = {theta:.4g}) (at most one spike between two "
                         f"events), got {trial_time}")
    if times.dim() != 2 or drive.dim() != 3 or drive.shape[:2] != times.shape:
        raise ValueError(f"theta_layer: times must be (B, E) and drive (B, E, N), got {tuple(times.shape)} and "
                         f"{tuple(drive.shape)}")
    if phi0.dim() != 1 or phi0.shape[0] != drive.shape[2]:
        raise ValueError(f"theta_layer: phi0 must be (N,) with N = {drive.shape[2]}, got {tuple(phi0.shape)}")
    B, E, N = drive.shape
    phi = phi0.to(drive.dtype).expand(B, N)
    t_prev = torch.zeros(B, 1, dtype=drive.dtype, device=drive.device)
    inf = torch.full((B, N), math.inf, dtype=drive.dtype, device=drive.device)
    slots = []
    for k in range(E + 1):
        if k < E:
            valid = (times[:, k:k + 1] <= trial_time)
            t_k = torch.where(valid, times[:, k:k + 1], torch.full_like(t_prev, trial_time))
        else:
            t_k = torch.full_like(t_prev, trial_time)
        t_k = torch.maximum(t_k, t_prev)           # an unsorted row is a caller's error; never flow backwards
        flowed = phi + (t_k - t_prev)
        fire = flowed >= theta
        slots.append(torch.where(fire, t_prev + theta - phi, inf))
        phi = torch.where(fire, flowed - theta, flowed)
        if k < E:
            phi = phase_jump(phi, torch.where(valid, drive[:, k], torch.zeros_like(drive[:, k])), p)
        t_prev = t_k
    spike_times = torch.stack(slots, dim=2)
    return ThetaRun(spike_times, phi, torch.isfinite(spike_times).sum(2))


def spike_volleys(spike_times: torch.Tensor, weight: torch.Tensor,
                  trial_time: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's output ``spike_times (B, N_in, S)`` as the next layer's volleys through ``weight (N_out, N_in)``:
    every spike is one event (sorted per sample; rows padded with ``inf``, cut to the most spikes of any sample),
    ``drive[b, e] = weight[:, source of spike e]``."""
    B, n_in, S = spike_times.shape
    flat = spike_times.reshape(B, n_in * S)
    order = torch.argsort(flat.detach(), dim=1)
    times = torch.gather(flat, 1, order)
    n_max = int((times.detach() <= trial_time).sum(1).max()) if times.numel() else 0
    times, order = times[:, :n_max], order[:, :n_max]
    drive = weight.t()[order // S]                                       # (B, E, N_out)
    return times, drive


def first_spike_time(spike_times: torch.Tensor) -> torch.Tensor:
    """``(B, N)``: each neuron's first spike time (``inf`` if it stays silent)."""
    if spike_times.shape[-1] == 0:
        return torch.full(spike_times.shape[:-1], math.inf, dtype=spike_times.dtype, device=spike_times.device)
    return spike_times.min(dim=-1).values


def pseudo_rates(phase_end: torch.Tensor, pseudo_input: torch.Tensor, p: ThetaParameters) -> torch.Tensor:
    """The rate-network output of a layer for its pseudodynamics: ``r = H(phi(T), I) / Theta`` (``I`` the weighted
    rates of the layer below, zero for the input layer)."""
    return phase_jump(phase_end, pseudo_input, p) / p.period


def pseudo_spike_time(phase_end: torch.Tensor, pseudo_input: torch.Tensor | float, p: ThetaParameters,
                      trial_time: float) -> torch.Tensor:
    """``T + Theta - H(phi(T), I)``: when a neuron silent in the trial would fire, given the extra input ``I``."""
    i = torch.as_tensor(pseudo_input, dtype=phase_end.dtype, device=phase_end.device)
    return trial_time + p.period - phase_jump(phase_end, i.expand_as(phase_end), p)


def ttfs_output(run: ThetaRun, pseudo_input: torch.Tensor | float, p: ThetaParameters,
                trial_time: float) -> torch.Tensor:
    """Time-to-first-spike output ``(B, N)``: the first ordinary spike where there is one, else the pseudospike."""
    first = first_spike_time(run.spike_times)
    pseudo = pseudo_spike_time(run.phase_end, pseudo_input, p, trial_time)
    return torch.where(torch.isfinite(first), first, pseudo)
