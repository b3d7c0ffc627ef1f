"""Spiking neuron models: one discrete-time recurrence (``dynamics``), several named populations, and e-prop's
LIF/ALIF neuron (``eprop``: its own reset and refractory rules)."""
from spikes.neurons.alif import ALIF
from spikes.neurons.cuba import CubaLIF
from spikes.neurons.dynamics import NeuronParameters, NeuronState, initial_state, neuron_step
from spikes.neurons.eprop import EpropParameters, EpropState, eprop_initial_state, eprop_neuron_step
from spikes.neurons.lif import IF, LIF, decay_from_tau
from spikes.neurons.module import SpikingNeuron
from spikes.neurons.plif import PLIF
from spikes.neurons.sequence import run_recurrent, run_sequence

__all__ = ["ALIF", "CubaLIF", "IF", "LIF", "PLIF", "EpropParameters", "EpropState", "NeuronParameters",
           "NeuronState", "SpikingNeuron", "decay_from_tau", "eprop_initial_state", "eprop_neuron_step",
           "initial_state", "neuron_step", "run_recurrent", "run_sequence"]
