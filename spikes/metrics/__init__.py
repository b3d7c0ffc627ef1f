"""Activity metrics of spiking networks: per-layer firing rate, activation density, synaptic operations.

See :mod:`spikes.metrics.probe` for the definitions; :mod:`spikes.metrics.table` writes tables as CSV/Markdown.
The probe (it imports torch, seconds) loads on first access to its names (module ``__getattr__``): the tables
need no torch, and the CLI and the reports use them before torch is loaded.
"""
from __future__ import annotations

from spikes.metrics.table import to_csv, to_markdown

_PROBE = ("LayerStats", "SPIKING", "SpikeProbe", "is_synaptic")
__all__ = sorted([*_PROBE, "to_csv", "to_markdown"])


def __getattr__(name: str):
    if name in _PROBE:
        from spikes.metrics import probe

        return getattr(probe, name)
    raise AttributeError(f"module 'spikes.metrics' has no attribute {name!r}")
