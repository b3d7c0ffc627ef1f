"""Synaptic layers that operate on whole sequences, time first ``(T, B, ...)``."""
from spikes.layers.event_conv import EventConv2d
from spikes.layers.event_linear import EventLinear
from spikes.layers.recurrent import RecurrentLIF
from spikes.layers.time_distributed import TimeDistributed

__all__ = ["EventConv2d", "EventLinear", "RecurrentLIF", "TimeDistributed"]
