"""Activity metrics of spiking networks: per-layer firing rate, activation density, synaptic operations.

See :mod:`spikes.metrics.probe` for the definitions; :mod:`spikes.metrics.table` writes tables as CSV/Markdown.
"""
from spikes.metrics.probe import LayerStats, SpikeProbe, is_synaptic
from spikes.metrics.table import atomic_write_text, to_csv, to_markdown

__all__ = ["LayerStats", "SpikeProbe", "atomic_write_text", "is_synaptic", "to_csv", "to_markdown"]
