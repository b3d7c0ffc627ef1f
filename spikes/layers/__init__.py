"""Synaptic layers that operate on whole sequences, time first ``(T, B, ...)``; e-prop's recurrent population
with its weights (``EpropRecurrent``)."""
from spikes.layers.eprop_recurrent import EpropRecurrent
from spikes.layers.event_conv import EventConv2d
from spikes.layers.event_linear import EventLinear
from spikes.layers.recurrent import RecurrentLIF
from spikes.layers.time_distributed import TimeDistributed

__all__ = ["EpropRecurrent", "EventConv2d", "EventLinear", "RecurrentLIF", "TimeDistributed"]
