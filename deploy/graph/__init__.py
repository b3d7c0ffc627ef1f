"""Graph IR of spiking networks (NIR-like): one module per kind of node, ``Graph`` and ``capture``."""
from spikes.deploy.graph.affine import Affine
from spikes.deploy.graph.capture import capture
from spikes.deploy.graph.conv import Conv2d
from spikes.deploy.graph.eprop_neurons import EpropNeurons
from spikes.deploy.graph.graph import Graph
from spikes.deploy.graph.gt import GT, GTPotential
from spikes.deploy.graph.integrator import Integrator
from spikes.deploy.graph.io import Input, Output
from spikes.deploy.graph.neurons import Neurons
from spikes.deploy.graph.node import LinearNode, Node, PopulationNode
from spikes.deploy.graph.pool import AvgPool2d, SumPool2d
from spikes.deploy.graph.reshape import Flatten, Scale
from spikes.deploy.graph.upsample import Upsample

__all__ = ["Affine", "AvgPool2d", "Conv2d", "EpropNeurons", "Flatten", "GT", "GTPotential", "Graph", "Input", "Integrator",
           "LinearNode", "Neurons", "Node", "Output", "PopulationNode", "Scale", "SumPool2d", "Upsample", "capture"]
