"""Population kinds (one module each): how a kind of population is lowered, quantised, simulated and built
in Lava (the interface: :class:`spikes.deploy.populations.base.PopulationKind`).

``lif`` (graph ``Neurons``: Lava's own LIF), ``integrator`` (graph ``Integrator``: a non-spiking readout,
custom Lava process), ``eprop`` (graph ``EpropNeurons``: e-prop's LIF/ALIF neurons with subtractive reset,
adaptive threshold and refractory period, custom Lava process), ``gt``/``gt_potential`` (graph ``GT``/
``GTPotential``: growth-transform neurons, custom Lava process). ``kind_of(x)`` finds the kind of a graph
node, a lowered population or a quantised one; ``register(kind)`` adds a kind.
"""
from __future__ import annotations

from spikes.deploy.populations.base import PopulationKind
from spikes.deploy.populations.eprop import EpropKind, QEprop
from spikes.deploy.populations.gt import GTKind, GTPotentialKind
from spikes.deploy.populations.integrator import IntegratorKind, QIntegrator
from spikes.deploy.populations.lif import LIFKind, QPopulation

KINDS: dict[str, PopulationKind] = {}


def register(kind: PopulationKind) -> PopulationKind:
    """Add ``kind`` (its ``name`` must be new)."""
    if kind.name in KINDS:
        raise ValueError(f"population kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


register(LIFKind())
register(IntegratorKind())
register(EpropKind())
register(GTKind())
register(GTPotentialKind())


def kind_of(x) -> PopulationKind:
    """The kind of a graph population node, a lowered ``Population`` (its ``node``) or a quantised population
    (its ``kind`` name)."""
    name = getattr(x, "kind", None)
    if isinstance(name, str) and name in KINDS:
        return KINDS[name]
    node = getattr(x, "node", x)
    for kind in KINDS.values():
        if type(node) is kind.node_type:
            return kind
    raise ValueError(f"{getattr(x, 'name', type(x).__name__)!r}: no deploy support for populations of type "
                     f"{type(node).__name__} (known: {', '.join(k.node_type.__name__ for k in KINDS.values())})")


__all__ = ["KINDS", "EpropKind", "GTKind", "GTPotentialKind", "IntegratorKind", "LIFKind", "PopulationKind", "QEprop",
           "QIntegrator", "QPopulation", "kind_of", "register"]
