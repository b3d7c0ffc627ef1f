"""Spiking neuron models: one discrete-time recurrence (``dynamics``), several named populations."""
from spikes.neurons.alif import ALIF
from spikes.neurons.cuba import CubaLIF
from spikes.neurons.dynamics import NeuronParameters, NeuronState, initial_state, neuron_step
from spikes.neurons.lif import IF, LIF, decay_from_tau
from spikes.neurons.module import SpikingNeuron
from spikes.neurons.plif import PLIF
from spikes.neurons.sequence import run_recurrent, run_sequence

__all__ = ["ALIF", "CubaLIF", "IF", "LIF", "PLIF", "NeuronParameters", "NeuronState", "SpikingNeuron",
           "decay_from_tau", "initial_state", "neuron_step", "run_recurrent", "run_sequence"]
