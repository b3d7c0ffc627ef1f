"""The non-spiking twin of StereoSpike for SNN-vs-ANN comparisons (the paper's 'equivalent ANNs').

Same graph as :class:`~spikes.models.stereospike.model.StereoUNet`; each unit is BatchNorm followed by an
activation (sigmoid, tanh, relu or leaky_relu) instead of a spiking neuron.
"""
from __future__ import annotations

from torch import nn

from spikes.models.stereospike.model import StereoUNet

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


class StereoUNetANN(StereoUNet):
    """U-Net with ``unit = activation(BatchNorm(conv))``; see :class:`StereoUNet` for the graph."""

    unit_op = "act"

    def __init__(self, base: int = 32, levels: int = 4, n_res: int = 2, in_channels: int = 4,
                 input_size: tuple[int, int] = (260, 346), activation: str = "sigmoid", init_depth: float = 0.0):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is unknown; choose one of {', '.join(ACTIVATIONS)}")
        self.activation = activation
        super().__init__(base, levels, n_res, in_channels, input_size, init_depth)

    def make_unit(self, channels: int) -> nn.Module:
        return nn.Sequential(nn.BatchNorm2d(channels), ACTIVATIONS[self.activation]())
