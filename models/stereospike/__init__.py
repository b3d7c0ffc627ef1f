"""StereoSpike: spiking U-Net for dense depth from stereo event cameras, its ANN twin, loss and metrics.

- :class:`StereoSpike` (``StereoSpike.paper()`` = the published 18.1 M-parameter network), :class:`StereoUNetANN`;
  ``model.graph()`` lists the deployable nodes (conv / neuron / upsample / add), ``model.layers`` the modules;
  ``model.to_graph(input_shape)`` is the deploy graph (:mod:`.export`: Lava, ``sim``; the ANN is refused).
- :mod:`.loss` (``depth_loss``: scale-invariant + 0.5 gradient matching on every readout scale, spike penalty),
  :mod:`.metrics` (MDE, one-pixel accuracy, firing rate), :mod:`.train` (``StereoConfig``, ``train``,
  ``evaluate``, checkpoints), :mod:`.data` (embedded set, MVSEC-layout file, MVSEC split 1), :mod:`.report`.
- CLI: ``spikes stereo train|eval|report`` (``--data embedded`` by default).
"""
from spikes.models.stereospike.ann import StereoUNetANN
from spikes.models.stereospike.model import Node, StereoOutput, StereoSpike, StereoUNet
from spikes.models.stereospike.neurons import OneStepIF, OneStepPLIF

__all__ = ["StereoSpike", "StereoUNetANN", "StereoUNet", "StereoOutput", "Node", "OneStepIF", "OneStepPLIF"]
