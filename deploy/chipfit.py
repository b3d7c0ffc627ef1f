"""Chip-fit report: neurons, synapses, weight memory and neuro-cores a network needs on Loihi 2.

Limits are parameters (``LoihiLimits``); defaults from ``/work/shared/notes/lava.md``: 128 neuro-cores per
chip of which Lava's mapper budgets 120, about 1M neurons and 120M synapses per chip (Intel's product
brief), 8-bit weights, synaptic delays up to 62 steps. Neurons per core (8,192) and synaptic memory per
core (128 KB) are NOT confirmed from a primary source: change them when you know better.

Per population: ``cores = max(ceil(neurons / neurons_per_core), ceil(weight bytes / memory_per_core))``
where weight bytes = incoming synapses x ``weight_bits`` / 8 (a conv projection counts every expanded
synapse, zero-padding positions included, unless ``share_conv_weights``, then only its kernel). A population never shares a core. Problems
(anything that cannot map: Lava-unsupported neurons, delays above the limit, more than a chip's budget) are
listed by layer; ``ChipFit.ok`` is false when there is any. Populations of a custom kind (not Lava's own LIF,
e.g. the ``Integrator`` readout) are listed in ``ChipFit.notes``: they run in Lava's CPU simulation, and
on a chip they would need microcode (Intel's lava-loihi).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from spikes.deploy.network import Network
from spikes.deploy.populations import kind_of
from spikes.deploy.quantize import QNetwork, check_lava


@dataclass(frozen=True)
class LoihiLimits:
    cores_per_chip: int = 120            # Lava's mapper budget (128 physical neuro-cores)
    neurons_per_core: int = 8192         # unconfirmed
    memory_per_core: int = 128 * 1024    # bytes of synaptic memory per core, unconfirmed (128 or 192 KB)
    neurons_per_chip: int = 1_000_000
    synapses_per_chip: int = 120_000_000
    weight_bits: int = 8
    max_delay: int = 62
    max_chips: int = 1
    share_conv_weights: bool = False


@dataclass
class LayerFit:
    layer: str
    neurons: int
    synapses: int
    weight_bytes: int
    cores: int
    max_delay: int


@dataclass
class ChipFit:
    layers: list[LayerFit]
    limits: LoihiLimits
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    capacity: list[str] = field(default_factory=list)      # the problems that are only size: more chips would do

    @property
    def neurons(self) -> int:
        return sum(layer.neurons for layer in self.layers)

    @property
    def synapses(self) -> int:
        return sum(layer.synapses for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def cores(self) -> int:
        return sum(layer.cores for layer in self.layers)

    @property
    def chips(self) -> int:
        return max(1, math.ceil(self.cores / self.limits.cores_per_chip))

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"{'layer':<16} {'neurons':>9} {'synapses':>12} {'weight KB':>10} {'cores':>6} {'delay':>6}"]
        for r in self.layers:
            lines.append(f"{r.layer:<16} {r.neurons:>9,} {r.synapses:>12,} {r.weight_bytes / 1024:>10.1f} {r.cores:>6} "
                         f"{r.max_delay:>6}")
        lines.append(f"{'total':<16} {self.neurons:>9,} {self.synapses:>12,} {self.weight_bytes / 1024:>10.1f} "
                     f"{self.cores:>6}   -> {self.chips} chip(s) of {self.limits.cores_per_chip} cores")
        lines.append("fits" if self.ok else "DOES NOT FIT:\n  " + "\n  ".join(self.problems))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def chip_fit(net: Network | QNetwork, limits: LoihiLimits = LoihiLimits()) -> ChipFit:
    """The resources ``net`` needs and what prevents it from mapping (see the module docstring)."""
    layers, problems, notes = [], [], []
    for name in net.order():
        pop = net.populations[name]
        kind = kind_of(pop)
        if not kind.native:
            notes.append(f"layer {name!r}: custom neuron kind {kind.name!r} runs in Lava's CPU simulation; on Loihi 2 it "
                         "needs microcode (lava-loihi)")
        if isinstance(net, Network):
            try:
                check_lava(pop)
            except ValueError as exc:
                problems.append(str(exc))
        n = pop.size
        syn = stored = 0
        max_delay = 0
        for proj in net.incoming(name):
            if proj.kind == "conv":
                c = proj.conv
                expanded = int(math.prod(c.output_shape) * math.prod(c.weight.shape[1:]))
                syn += expanded
                stored += int(c.weight.size) if limits.share_conv_weights else expanded
            elif proj.kind == "sparse":
                syn += int(proj.weight.nnz)
                stored += int(proj.weight.nnz)
            else:
                nz = int((proj.weight != 0).sum())
                syn += nz
                stored += nz
            max_delay = max(max_delay, proj.delay)
            if proj.delay - 1 > limits.max_delay:
                problems.append(f"layer {name!r}: projection from {proj.src!r} needs a delay of {proj.delay} steps, "
                                f"above the limit of {limits.max_delay}")
        weight_bytes = math.ceil(stored * limits.weight_bits / 8)
        cores = max(math.ceil(n / limits.neurons_per_core), math.ceil(weight_bytes / limits.memory_per_core), 1)
        layers.append(LayerFit(name, n, syn, weight_bytes, cores, max_delay))
    fit = ChipFit(layers, limits, problems, notes)
    budget = limits.max_chips
    if fit.chips > budget:
        fit.capacity.append(f"needs {fit.cores} cores = {fit.chips} chips, more than max_chips={budget}")
    if fit.neurons > limits.neurons_per_chip * budget:
        fit.capacity.append(f"{fit.neurons:,} neurons exceed {limits.neurons_per_chip:,} per chip x {budget}")
    if fit.synapses > limits.synapses_per_chip * budget:
        fit.capacity.append(f"{fit.synapses:,} synapses exceed {limits.synapses_per_chip:,} per chip x {budget}")
    problems.extend(fit.capacity)
    return fit
