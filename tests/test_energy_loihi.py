"""Energy model: hand-computed totals with the Davies et al. 2018 Table 2 figures, overrides, bad input."""
import math

import pytest

from spikes.energy import (LOIHI1, ActivityCounts, EnergyParameters, counts_from_layers, energy_from_layers,
                           estimate_energy)


def test_constants_are_the_published_loihi1_figures():
    assert LOIHI1.e_synop == pytest.approx(23.6e-12)
    assert LOIHI1.e_neuron_active == pytest.approx(81e-12)
    assert LOIHI1.e_neuron_inactive == pytest.approx(52e-12)
    assert LOIHI1.e_spike == pytest.approx(1.7e-12)
    assert "Davies" in LOIHI1.source and "proxy" in LOIHI1.source


def test_hand_computed_two_layer_network():
    # Layer 1: conv, 1000 synops/sample, 100 neurons x 10 steps at rate 0.05 -> 50 spikes.
    # Layer 2: linear, 400 synops/sample, 10 neurons x 10 steps at rate 0.2 -> 20 spikes. A pooling row adds nothing.
    rows = [
        {"layer": "conv", "synops": 1000.0, "firing_rate": None},
        {"layer": "lif1", "firing_rate": 0.05, "neurons": 100, "steps": 10},
        {"layer": "pool", "synops": None, "firing_rate": None},
        {"layer": "fc", "synops": 400.0},
        {"layer": "lif2", "firing_rate": 0.2, "neurons": 10, "steps": 10},
    ]
    c = counts_from_layers(rows)
    assert (c.synops, c.neuron_updates, c.spikes, c.active_updates) == (1400.0, 1100.0, pytest.approx(70.0), None)
    e = energy_from_layers(rows)
    # 1400 * 23.6 pJ = 33040 pJ; 1100 * 81 pJ = 89100 pJ; 70 * 1.7 pJ = 119 pJ; total 122259 pJ.
    assert e.synaptic == pytest.approx(33040e-12)
    assert e.neuron == pytest.approx(89100e-12)
    assert e.spike == pytest.approx(119e-12)
    assert e.total == pytest.approx(122259e-12)
    assert e.as_dict()["total"] == pytest.approx(122259e-12)


def test_active_updates_and_overrides():
    # 300 of 1100 updates active: 300*81 + 800*52 = 24300 + 41600 = 65900 pJ; 2 hops/spike at 3 pJ: 70*(1.7+6) pJ.
    e = estimate_energy(ActivityCounts(synops=1400, neuron_updates=1100, spikes=70, active_updates=300),
                        EnergyParameters(hops_per_spike=2))
    assert e.neuron == pytest.approx(65900e-12)
    assert e.spike == pytest.approx(70 * 7.7e-12)
    custom = estimate_energy(ActivityCounts(synops=10, neuron_updates=0, spikes=0), EnergyParameters(e_synop=1e-9))
    assert custom.total == pytest.approx(1e-8)
    # active_updates is summed only when every spiking row gives it
    rows = [{"firing_rate": 0.1, "neurons": 10, "steps": 2, "active_updates": 5},
            {"firing_rate": 0.1, "neurons": 10, "steps": 2, "active_updates": 7}]
    assert counts_from_layers(rows).active_updates == 12
    assert counts_from_layers(rows[:1] + [{"firing_rate": 0.1, "neurons": 10, "steps": 2}]).active_updates is None


@pytest.mark.parametrize("kwargs, word", [({"e_synop": -1.0}, "e_synop"), ({"e_spike": math.nan}, "e_spike")])
def test_bad_parameters_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        EnergyParameters(**kwargs)


def test_bad_counts_are_named():
    with pytest.raises(ValueError, match="lif1.*firing_rate"):
        counts_from_layers([{"layer": "lif1", "firing_rate": 3.0, "neurons": 1, "steps": 1}])
    with pytest.raises(ValueError, match="active_updates"):
        ActivityCounts(synops=0, neuron_updates=1, spikes=0, active_updates=2)
    with pytest.raises(ValueError, match="conv.*synops"):
        counts_from_layers([{"layer": "conv", "synops": -5}])
