"""Energy estimate of a spiking network on a Loihi-class chip, from activity counts.

The estimate is a sum of counted operations times a per-operation energy::

    E = N_synop * e_synop                                   (synaptic spike operations)
      + N_active * e_neuron_active + (N_upd - N_active) * e_neuron_inactive   (neuron updates)
      + N_spike * (e_spike + hops_per_spike * e_hop)        (spike messages)

``N_synop``: synaptic operations (every nonzero input reaching one synapse, as counted by
:class:`spikes.metrics.SpikeProbe`); ``N_upd = sum_layers neurons * steps`` (every neuron is updated every
time step); ``N_spike = sum_layers firing_rate * neurons * steps``; ``N_active``: updates counted as
"active". Counts are per sample, so the result is joules per sample (inference).

**Source of the constants, and why they are a proxy.** Intel has not published per-operation energies for
Loihi 2. The defaults are the Loihi (1) figures of Davies et al., "Loihi: A Neuromorphic Manycore
Processor with On-Chip Learning", IEEE Micro 38(1):82-99, 2018, Table 2 (14 nm, 0.75 V; the table
is captioned as pre-silicon, i.e. from circuit simulation, not measured on a chip):

========================================  ============  ====================================
Table 2 row                               value         constant here
========================================  ============  ====================================
Energy per synaptic spike op (min)        23.6 pJ       ``E_SYNOP`` (a minimum)
Energy per synaptic update (pairwise      120 pJ        ``E_SYNAPTIC_UPDATE`` (learning only,
STDP)                                                   not used for inference)
Energy per neuron update (active /        81 / 52 pJ    ``E_NEURON_ACTIVE``, ``E_NEURON_INACTIVE``
inactive)
Within-tile spike energy                  1.7 pJ        ``E_SPIKE``
Energy per tile hop (E-W / N-S)           3.0 / 4.0 pJ  ``E_HOP`` (E-W; ``hops_per_spike`` = 0
                                                        by default: placement is unknown)
========================================  ============  ====================================

They are Loihi-1 numbers used as a stand-in for Loihi 2; treat the result as an order-of-magnitude
estimate. The paper does not define "active" precisely, so by default every neuron update is charged at
the active rate (an upper bound on that term); pass ``active_updates`` to charge the rest at 52 pJ.
Static (leakage) power and host I/O are not included. Override any constant with
:class:`EnergyParameters` (e.g. ``EnergyParameters(e_synop=...)``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Mapping

PJ = 1e-12

# Davies et al., IEEE Micro 38(1), 2018, Table 2 (Loihi 1, pre-silicon, 0.75 V), in joules.
E_SYNOP = 23.6 * PJ
E_SYNAPTIC_UPDATE = 120.0 * PJ
E_NEURON_ACTIVE = 81.0 * PJ
E_NEURON_INACTIVE = 52.0 * PJ
E_SPIKE = 1.7 * PJ
E_HOP = 3.0 * PJ

SOURCE = ("Loihi 1 per-operation energies (Davies et al., IEEE Micro 38(1), 2018, Table 2, pre-silicon): "
          "23.6 pJ/synaptic op (min), 81 pJ/neuron update (active), 52 pJ (inactive), 1.7 pJ/within-tile spike, "
          "3.0 pJ/tile hop; used as a proxy for Loihi 2, whose per-operation energies are not published")


@dataclass(frozen=True)
class EnergyParameters:
    """Per-operation energies in joules (defaults: Loihi 1, Davies et al. 2018, Table 2)."""

    e_synop: float = E_SYNOP
    e_neuron_active: float = E_NEURON_ACTIVE
    e_neuron_inactive: float = E_NEURON_INACTIVE
    e_spike: float = E_SPIKE
    e_hop: float = E_HOP
    hops_per_spike: float = 0.0
    source: str = SOURCE

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "source" and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"EnergyParameters.{f.name} must be a finite number >= 0, got {v!r}")


LOIHI1 = EnergyParameters()


@dataclass(frozen=True)
class ActivityCounts:
    """Operation counts (per sample): synaptic ops, neuron updates, spikes, optional active updates."""

    synops: float
    neuron_updates: float
    spikes: float
    active_updates: float | None = None

    def __post_init__(self) -> None:
        for name in ("synops", "neuron_updates", "spikes", "active_updates"):
            v = getattr(self, name)
            if v is None and name == "active_updates":
                continue
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"ActivityCounts.{name} must be a finite number >= 0, got {v!r}")
        if self.active_updates is not None and self.active_updates > self.neuron_updates:
            raise ValueError(f"ActivityCounts.active_updates ({self.active_updates}) exceeds "
                             f"neuron_updates ({self.neuron_updates})")


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy in joules, split into the three terms; ``total`` is their sum."""

    synaptic: float
    neuron: float
    spike: float

    @property
    def total(self) -> float:
        return self.synaptic + self.neuron + self.spike

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def estimate_energy(counts: ActivityCounts, params: EnergyParameters = LOIHI1) -> EnergyEstimate:
    """Joules for ``counts`` with the per-operation energies ``params`` (equation in the module docstring)."""
    active = counts.neuron_updates if counts.active_updates is None else counts.active_updates
    return EnergyEstimate(
        synaptic=counts.synops * params.e_synop,
        neuron=active * params.e_neuron_active + (counts.neuron_updates - active) * params.e_neuron_inactive,
        spike=counts.spikes * (params.e_spike + params.hops_per_spike * params.e_hop),
    )


def counts_from_layers(per_layer: Iterable[Mapping]) -> ActivityCounts:
    """Sum per-layer rows (the ``per_layer`` entries of a summary, see :mod:`spikes.reports.summary`).

    A row contributes ``synops`` (per sample; None/absent for non-synaptic layers) and, when it has a
    ``firing_rate`` together with ``neurons`` and ``steps``, ``neurons * steps`` updates and
    ``firing_rate * neurons * steps`` spikes. ``active_updates`` is summed only if every spiking row has it.
    """
    synops = updates = spikes = 0.0
    active: float | None = 0.0
    for i, row in enumerate(per_layer):
        name = row.get("layer", f"#{i}")
        s = row.get("synops")
        if s is not None:
            if not (isinstance(s, (int, float)) and s >= 0):
                raise ValueError(f"layer {name!r}: synops must be a number >= 0, got {s!r}")
            synops += s
        rate, n, t = row.get("firing_rate"), row.get("neurons"), row.get("steps")
        if rate is None or n is None or t is None:
            continue
        if not (0 <= rate <= 1):
            raise ValueError(f"layer {name!r}: firing_rate must be in [0, 1] spikes/neuron/step, got {rate!r}")
        updates += n * t
        spikes += rate * n * t
        a = row.get("active_updates")
        active = None if (a is None or active is None) else active + a
    return ActivityCounts(synops=synops, neuron_updates=updates, spikes=spikes,
                          active_updates=active if updates and active is not None else None)


def energy_from_layers(per_layer: Iterable[Mapping], params: EnergyParameters = LOIHI1) -> EnergyEstimate:
    """:func:`estimate_energy` of :func:`counts_from_layers` (joules per sample)."""
    return estimate_energy(counts_from_layers(per_layer), params)
