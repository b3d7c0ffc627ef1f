"""A plain (non-spiking) multilayer perceptron on feature vectors: the ANN baseline of the learning-rule studies.

``y = W_L phi(... phi(W_1 x + b_1) ...) + b_L`` with ``phi`` ReLU or tanh; ``depth`` hidden layers of ``width``
units (Kunin et al.'s small-scale setting: 64-128-128-10 shallow, 64-(64 x 6)-10 deep). Input ``(B, D)``, output
per-class logits ``(B, K)``. It has no spiking layer, so it trains with any rule but has no deploy graph.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Sequential):
    """``depth`` x [Linear - activation], then Linear(width -> n_classes). Weights start He-normal for ReLU
    (std sqrt(2 / fan_in)) and Glorot-normal for tanh, so the signal keeps its scale through a deep stack; biases 0."""

    def __init__(self, n_features: int, n_classes: int, width: int = 128, depth: int = 2, activation: str = "relu"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is unknown: choose one of {sorted(ACTIVATIONS)}")
        if depth < 0 or width < 1:
            raise ValueError(f"an MLP needs depth >= 0 and width >= 1 (got depth={depth}, width={width})")
        layers: list[nn.Module] = []
        n = n_features
        for _ in range(depth):
            layers += [nn.Linear(n, width), ACTIVATIONS[activation]()]
            n = width
        layers.append(nn.Linear(n, n_classes))
        super().__init__(*layers)
        for m in self:
            if isinstance(m, nn.Linear):
                if activation == "relu":
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                else:
                    nn.init.xavier_normal_(m.weight, gain=nn.init.calculate_gain("tanh"))
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.to(self[0].weight.dtype))
