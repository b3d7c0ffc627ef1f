"""StereoSpike: spiking U-Net for dense depth from stereo event cameras, its ANN twin, loss and metrics.

- :class:`StereoSpike` (``StereoSpike.paper()`` = the published 18.1 M-parameter network), :class:`StereoUNetANN`;
  ``model.graph()`` lists the deployable nodes (conv / neuron / upsample / add), ``model.layers`` the modules;
  ``model.to_graph(input_shape)`` is the deploy graph (:mod:`.export`: Lava, ``sim``; the ANN is refused).
- :mod:`.loss` (``depth_loss``: scale-invariant + 0.5 gradient matching on every readout scale, spike penalty),
  :mod:`.metrics` (MDE, one-pixel accuracy, firing rate; ``evaluate`` over a data set, the mean-depth baseline),
  :mod:`.data` (``StereoData``; embedded set, MVSEC-layout file, MVSEC split 1).
- Training: the model kind ``stereospike`` of :mod:`spikes.models.registry` (``model.snn = false``: the ANN twin),
  trained by the one trainer (``spikes train --model stereospike --dataset stereo-embedded --scheduler step``).
- CLI: ``spikes stereo train|eval|report`` (``--data embedded`` by default; the report is
  :mod:`spikes.pipeline.stereo_report`).
"""
from spikes.models.stereospike.ann import StereoUNetANN
from spikes.models.stereospike.model import Node, StereoOutput, StereoSpike, StereoUNet
from spikes.models.stereospike.neurons import OneStepIF, OneStepPLIF

__all__ = ["StereoSpike", "StereoUNetANN", "StereoUNet", "StereoOutput", "Node", "OneStepIF", "OneStepPLIF"]
