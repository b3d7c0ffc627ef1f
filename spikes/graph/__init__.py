"""Graph IR of spiking networks (NIR-like): one module per kind of node, ``Graph`` and ``capture``."""
from spikes.graph.affine import Affine
from spikes.graph.capture import capture, capture_sequence
from spikes.graph.conv import Conv2d
from spikes.graph.eprop_neurons import EpropNeurons
from spikes.graph.graph import Graph
from spikes.graph.gt import GT, GTPotential
from spikes.graph.integrator import Integrator
from spikes.graph.io import Input, Output
from spikes.graph.neurons import Neurons
from spikes.graph.node import LinearNode, Node, PopulationNode
from spikes.graph.pool import AvgPool2d, SumPool2d
from spikes.graph.reshape import Flatten, Scale
from spikes.graph.upsample import Upsample

__all__ = ["Affine", "AvgPool2d", "Conv2d", "EpropNeurons", "Flatten", "GT", "GTPotential", "Graph", "Input", "Integrator",
           "LinearNode", "Neurons", "Node", "Output", "PopulationNode", "Scale", "SumPool2d", "Upsample", "capture",
           "capture_sequence"]
