"""Activity of a torch model in the summary's row format, plus per-neuron rates and one sample's raster.

:meth:`spikes.metrics.SpikeProbe.summary_rows` gives the ``per_layer`` rows (``synops`` = synaptic operations
per sample). :class:`NeuronRecorder` adds what the probe does not keep:
per-neuron firing rates ``r_j = sum_{t,b} s[t, b, j] / (T * B)`` of every spiking layer and the spikes of
the first sample of the first batch (a raster).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from spikes.neurons import SpikingNeuron


def raster_dict(layer: str, spikes: np.ndarray, max_neurons: int = 400) -> dict:
    """Raster of one sample's spikes ``(T, N)`` (first ``max_neurons`` neurons) in the summary's format."""
    s = np.asarray(spikes).reshape(spikes.shape[0], -1)[:, :max_neurons]
    t, i = np.nonzero(s > 0)
    return {"layer": layer, "steps": int(s.shape[0]), "neurons": int(s.shape[1]), "t": t.tolist(), "i": i.tolist()}


class NeuronRecorder:
    """Forward hooks on every :class:`spikes.neurons.SpikingNeuron` of ``model`` (time-first outputs).

    Inside ``with``: per-neuron spike sums and sample counts accumulate; the first call's first sample is
    kept as a raster. :meth:`neuron_rates` and :meth:`raster` read them out.
    """

    def __init__(self, model: nn.Module):
        self.layers = [(n, m) for n, m in model.named_modules() if isinstance(m, SpikingNeuron)]
        self.sums: dict[str, torch.Tensor] = {}
        self.count: dict[str, int] = {}
        self.first: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> "NeuronRecorder":
        for name, m in self.layers:
            self._handles.append(m.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module, inputs, out):
            if not isinstance(out, torch.Tensor) or out.dim() < 2:
                return
            s = out.detach().reshape(out.shape[0], out.shape[1], -1).float()      # (T, B, N)
            self.sums[name] = self.sums.get(name, 0) + s.sum((0, 1))
            self.count[name] = self.count.get(name, 0) + s.shape[0] * s.shape[1]
            if name not in self.first:
                self.first[name] = s[:, 0].clone()
        return hook

    def neuron_rates(self) -> dict[str, list[float]]:
        return {k: (self.sums[k] / self.count[k]).tolist() for k in self.sums}

    def raster(self, layer: str | None = None) -> dict | None:
        """Raster of ``layer`` (default: the first spiking layer that spiked) for the first sample."""
        names = [layer] if layer else list(self.first)
        for name in names:
            if name in self.first and (layer or self.first[name].sum() > 0):
                return raster_dict(name, self.first[name].numpy())
        return None
