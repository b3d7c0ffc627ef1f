"""Activity metrics of spiking networks: per-layer firing rate, activation density, synaptic operations.

See :mod:`spikes.metrics.probe` for the definitions; :mod:`spikes.metrics.table` writes tables as CSV/Markdown.
"""
from __future__ import annotations

import importlib

# Lazy exports: the table helpers need no torch (the CLI imports them before torch is loaded).
_EXPORTS = {"LayerStats": "probe", "SPIKING": "probe", "SpikeProbe": "probe", "is_synaptic": "probe",
            "to_csv": "table", "to_markdown": "table"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"spikes.metrics.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'spikes.metrics' has no attribute {name!r}")
