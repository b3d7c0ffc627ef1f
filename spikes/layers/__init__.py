"""Synaptic layers that operate on whole sequences, time first ``(T, B, ...)``."""
from spikes.layers.time_distributed import TimeDistributed

__all__ = ["TimeDistributed"]
