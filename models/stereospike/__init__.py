"""StereoSpike: spiking U-Net for dense depth from stereo event cameras, its ANN twin, loss and metrics."""
from spikes.models.stereospike.ann import StereoUNetANN
from spikes.models.stereospike.model import Node, StereoOutput, StereoSpike, StereoUNet
from spikes.models.stereospike.neurons import OneStepIF, OneStepPLIF

__all__ = ["StereoSpike", "StereoUNetANN", "StereoUNet", "StereoOutput", "Node", "OneStepIF", "OneStepPLIF"]
